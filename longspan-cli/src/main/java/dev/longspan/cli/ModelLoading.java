package dev.longspan.cli;

import dev.longspan.format.ModelLoader;

import java.nio.file.Path;

/** Loads a model (GGUF file, Hugging Face directory or Longspan directory) and applies --attention / --rope overrides and an --adapter. */
final class ModelLoading {
    private ModelLoading() {}

    static final String DEQUANTIZE = "Widen a GGUF's weights to float32 at load instead of running on the stored blocks.";

    static final String ADAPTER = "A PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors) to apply to the model, unmerged.";

    static ModelLoader.LoadedModel load(Path path, String attention, String rope, boolean dequantize) {
        return load(path, attention, rope, dequantize, null);
    }

    /** As {@link #load(Path, String, String, boolean)}, with the LoRA adapter of {@code adapter} applied (null: none). */
    static ModelLoader.LoadedModel load(Path path, String attention, String rope, boolean dequantize, Path adapter) {
        return ModelLoader.load(path, dequantize ? ModelLoader.Weights.DEQUANTIZED : ModelLoader.Weights.STORED).withOverrides(attention, rope).withAdapter(adapter);
    }
}

package dev.longspan.cli;

import dev.longspan.format.ModelLoader;

import java.nio.file.Path;

/** Loads a model (GGUF file, Hugging Face directory or Longspan directory) and applies --attention / --rope overrides and an --adapter. */
final class ModelLoading {
    private ModelLoading() {}

    static final String DEQUANTIZE = "Widen a GGUF's weights to float32 at load instead of running on the stored blocks.";

    static final String NO_REPACK = "Keep a GGUF's Q8_0, Q4_K and F16 matrices in the memory-mapped file instead of repacking them at load for fast decoding (less memory, slower decode).";

    static final String ADAPTER = "A Hugging Face PEFT LoRA adapter directory (its adapter config and safetensors weights) to apply to the model, unmerged.";

    /** Loads a model, dequantized or with its GGUF matrices in their stored types (Q8_0/Q4_K/F16 repacked). */
    static ModelLoader.LoadedModel load(Path path, String attention, String rope, boolean dequantize) {
        return load(path, attention, rope, weights(dequantize, false), null);
    }

    /** How a GGUF's matrices are held, from --dequantize and --no-repack. */
    static ModelLoader.Weights weights(boolean dequantize, boolean noRepack) {
        return dequantize ? ModelLoader.Weights.DEQUANTIZED : noRepack ? ModelLoader.Weights.STORED : ModelLoader.Weights.REPACKED;
    }

    /** Loads a model with its GGUF matrices held as {@code weights} and the LoRA adapter of {@code adapter} applied (null: none). */
    static ModelLoader.LoadedModel load(Path path, String attention, String rope, ModelLoader.Weights weights, Path adapter) {
        return ModelLoader.load(path, weights).withOverrides(attention, rope).withAdapter(adapter);
    }
}

package dev.longspan.cli;

import dev.longspan.format.ModelLoader;

import java.nio.file.Path;

/** Loads a model (GGUF file, Hugging Face directory or Longspan directory) and applies --attention / --rope overrides. */
final class ModelLoading {
    private ModelLoading() {}

    static final String DEQUANTIZE = "Widen a GGUF's weights to float32 at load instead of running on the stored blocks.";

    static ModelLoader.LoadedModel load(Path path, String attention, String rope, boolean dequantize) {
        return ModelLoader.load(path, dequantize ? ModelLoader.Weights.DEQUANTIZED : ModelLoader.Weights.STORED).withOverrides(attention, rope);
    }
}

package dev.longspan.cli;

import dev.longspan.format.ModelLoader;

import java.nio.file.Path;

/** Loads a model (GGUF file, Hugging Face directory or Longspan directory) and applies --attention / --rope overrides. */
final class ModelLoading {
    private ModelLoading() {}

    static ModelLoader.LoadedModel load(Path path, String attention, String rope) {
        return ModelLoader.load(path).withOverrides(attention, rope);
    }
}

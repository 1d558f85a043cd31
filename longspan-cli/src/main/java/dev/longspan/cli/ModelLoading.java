package dev.longspan.cli;

import dev.longspan.model.ModelLoader;

import java.nio.file.Files;
import java.nio.file.Path;

/** Loads a model (GGUF file, Hugging Face directory or Longspan directory) and applies --attention / --rope overrides. */
final class ModelLoading {
    private ModelLoading() {}

    static ModelLoader.LoadedModel load(Path path, String attention, String rope) {
        return ModelLoader.load(path).withOverrides(attention, rope);
    }

    /** Where result files go by default: the model directory, or the directory of a model file. */
    static Path defaultOut(Path model) {
        if (Files.isDirectory(model)) return model;
        Path parent = model.toAbsolutePath().getParent();
        return parent != null ? parent : Path.of(".");
    }
}

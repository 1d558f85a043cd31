package dev.longspan.format;

import dev.longspan.format.ModelLoader.Format;
import dev.longspan.format.ModelLoader.LoadedModel;
import dev.longspan.format.ModelLoader.Weights;
import dev.longspan.model.ModelConfig;

import java.nio.file.Path;

/**
 * One way a model is stored on disk, and the seam between the model package (which knows no file
 * format) and the files: {@link GgufFormat}, {@link HuggingFaceFormat}, {@link LongspanFormat}.
 * {@link ModelLoader} asks each in turn whether it recognises a path. Adding a format means one
 * implementation here and one entry in {@link ModelLoader}'s list.
 */
public interface ModelFormat {
    Format id();

    /** Whether the path holds a model of this format, from a cheap look (a magic number, config.json's fields). */
    boolean recognizes(Path path);

    /** The model's config, without reading weights where the format allows; checked, errors naming file and field. */
    ModelConfig config(Path path);

    /** The model with its tokenizer, chat template and stop ids; everything is checked before any weight is read. */
    LoadedModel load(Path path, Weights weights);
}

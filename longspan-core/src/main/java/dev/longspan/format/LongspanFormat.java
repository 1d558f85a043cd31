package dev.longspan.format;

import dev.longspan.format.ModelLoader.Format;
import dev.longspan.format.ModelLoader.LoadedModel;
import dev.longspan.format.ModelLoader.Weights;
import dev.longspan.io.Json;
import dev.longspan.io.SafetensorsFile;
import dev.longspan.io.SafetensorsWriter;
import dev.longspan.io.Tokenizer;
import dev.longspan.io.TokenizerLoader;
import dev.longspan.model.ChatTemplate;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * A Longspan model directory: {@code config.json} ({@link ModelConfig#toJson}) and
 * {@code model.safetensors} (Hugging Face Llama tensor names, F32, {@code format=pt} metadata so
 * HF-style readers accept it), and the tokenizer the config names.
 */
public final class LongspanFormat implements ModelFormat {
    @Override
    public Format id() { return Format.LONGSPAN; }

    @Override
    public boolean recognizes(Path path) {
        Path cfg = path.resolve("config.json");
        return Files.isDirectory(path) && ModelLoader.isFile(cfg) && !HuggingFaceFormat.isHuggingFaceConfig(ModelLoader.readJson(cfg));
    }

    /** The config, with every tensor checked from the weights' header (present, shaped, its bytes inside the file). */
    @Override
    public ModelConfig config(Path dir) {
        ModelConfig c = ModelConfig.read(dir.resolve("config.json"));
        Path wp = dir.resolve("model.safetensors");
        if (!ModelLoader.isFile(wp)) throw new LongspanException(dir + ": no model.safetensors (the weights are missing)");
        try (SafetensorsFile f = SafetensorsFile.open(wp)) {  // open checks the extents: a truncated file fails
            for (Transformer.Tensor t : new Transformer(c, true).tensors()) checkTensor(f, wp, t);
        }
        return c;
    }

    @Override
    public LoadedModel load(Path dir, Weights weights) {
        Transformer m = read(dir);
        Tokenizer tok = TokenizerLoader.load(dir);
        ModelLoader.checkVocab(tok, m.config, dir);
        return new LoadedModel(m, tok, ChatTemplate.NONE, ModelLoader.stopIds(tok, List.of()), Format.LONGSPAN, dir, "longspan");
    }

    /** Writes a model directory: config.json and model.safetensors (each atomically). */
    public static void save(Path dir, Transformer model) {
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt").metadata("longspan.config", Json.write(model.config.toJson()));
        for (Transformer.Tensor t : model.tensors()) {
            float[] data = Arrays.copyOfRange(model.params, t.offset(), t.offset() + t.size());
            w.putF32(t.name(), t.shape(), data);
        }
        w.write(dir.resolve("model.safetensors"));
        model.config.write(dir.resolve("config.json"));
    }

    /** Reads a model directory's weights (no tokenizer), checking every tensor's presence and shape. */
    public static Transformer read(Path dir) {
        if (!Files.isDirectory(dir)) throw new LongspanException(dir + ": not a model directory");
        ModelConfig c = ModelConfig.read(dir.resolve("config.json"));
        Transformer m = new Transformer(c);
        Path wp = dir.resolve("model.safetensors");
        try (SafetensorsFile f = SafetensorsFile.open(wp)) {
            for (Transformer.Tensor t : m.tensors()) {
                checkTensor(f, wp, t);
                float[] data = f.floats(t.name());
                System.arraycopy(data, 0, m.params, t.offset(), t.size());
            }
        }
        return m;
    }

    private static void checkTensor(SafetensorsFile f, Path wp, Transformer.Tensor t) {
        if (!f.has(t.name())) throw new LongspanException(wp + ": missing tensor '" + t.name() + "'");
        if (!Arrays.equals(f.shape(t.name()), t.shape())) {
            throw new LongspanException(wp + ": tensor '" + t.name() + "' has shape " + Arrays.toString(f.shape(t.name()))
                    + " but config.json needs " + Arrays.toString(t.shape()));
        }
    }
}

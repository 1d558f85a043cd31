package dev.longspan.format;

import dev.longspan.attention.Pattern;
import dev.longspan.io.BpeTokenizer;
import dev.longspan.io.GgufFile;
import dev.longspan.io.GgufTokenizers;
import dev.longspan.io.Json;
import dev.longspan.io.SafetensorsFile;
import dev.longspan.io.Tokenizer;
import dev.longspan.io.TokenizerLoader;
import dev.longspan.kernel.QuantKernels;
import dev.longspan.model.ChatTemplate;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import dev.longspan.model.Weight;
import dev.longspan.position.Pairing;
import dev.longspan.position.RopeConfig;
import dev.longspan.position.RopeKind;
import dev.longspan.tensor.Parallel;
import dev.longspan.util.LongspanException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One entry point for every model Longspan runs: a GGUF file ({@link GgufFormat}), a Hugging Face
 * safetensors directory ({@link HuggingFaceFormat}) or a Longspan model directory
 * ({@link LongspanFormat}); the first {@link ModelFormat} that recognises the path reads it.
 *
 * <p>Everything that can be checked without reading tensor data is checked first (config, every
 * tensor's presence, shape and type, the tokenizer), so bad input fails with one
 * {@link LongspanException} naming the file and the problem before any weight is read.
 */
public final class ModelLoader {
    private ModelLoader() {}

    public enum Format { LONGSPAN, GGUF, SAFETENSORS }

    /**
     * How a GGUF's weight matrices are held: REPACKED (the default) keeps them in their own type,
     * Q8_0, Q4_K and F16 matrices repacked once at load into interleaved row groups for fast decoding
     * ({@link dev.longspan.kernel.InterleavedQuant}: memory of their own, about the file's size;
     * their pages of the file are released after the copy) and every other non-F32 matrix in the
     * memory-mapped file; STORED keeps every non-F32 matrix in the memory-mapped file, in its own
     * type (products run on its blocks; the page cache holds it once, no 2³¹-float limit);
     * DEQUANTIZED widens every weight to float32 into the parameter array at load.
     * Other formats are always loaded into the parameter array.
     */
    public enum Weights { REPACKED, STORED, DEQUANTIZED }

    /**
     * A loaded model with what generation needs.
     *
     * @param stopIds ids that end generation (EOS, end-of-turn tokens, config.json eos ids)
     */
    public record LoadedModel(Transformer model, Tokenizer tokenizer, ChatTemplate chat, int[] stopIds, Format format,
                              Path source, String architecture) {
        /** The same model with other attention patterns and/or RoPE (null = unchanged); weights shared. */
        public LoadedModel withOverrides(String attention, String rope) {
            ModelConfig c = model.config.withOverrides(attention, rope);
            if (c == model.config) return this;
            Transformer t = model.withConfig(c);
            return new LoadedModel(t, tokenizer, chat, stopIds, format, source, architecture);
        }

        /**
         * The same model with the PEFT LoRA adapter of {@code adapterDir} applied at every product
         * (not merged: stored matrices stay as stored); null leaves it unchanged.
         */
        public LoadedModel withAdapter(Path adapterDir) {
            if (adapterDir == null) return this;
            return new LoadedModel(PeftAdapter.apply(adapterDir, model), tokenizer, chat, stopIds, format, source, architecture);
        }

        /** Prompt ids: the text (wrapped in the chat template unless raw), BOS first when the model wants it. */
        public int[] promptIds(String text, boolean raw) {
            ChatTemplate t = raw ? ChatTemplate.NONE : chat;
            int[] body = tokenizer.encode(t.apply(text));
            boolean bos = tokenizer.bosId() >= 0 && (tokenizer.addBos() || (t == ChatTemplate.LLAMA3 && tokenizer.tokenId("<|begin_of_text|>") == tokenizer.bosId()));
            if (!bos) return body;
            int[] ids = new int[body.length + 1];
            ids[0] = tokenizer.bosId();
            System.arraycopy(body, 0, ids, 1, body.length);
            return ids;
        }

        public boolean isStop(int id) {
            for (int s : stopIds) if (s == id) return true;
            return false;
        }
    }

    /** The formats, asked in turn whether they recognise a path. */
    private static final List<ModelFormat> FORMATS = List.of(new LongspanFormat(), new HuggingFaceFormat(), new GgufFormat());

    /** Loads a GGUF file (weights kept in their own type, Q8_0/Q4_K/F16 repacked), a Hugging Face safetensors directory or a Longspan model directory. */
    public static LoadedModel load(Path path) {
        return load(path, Weights.REPACKED);
    }

    /** Loads a model; {@code weights} says how a GGUF's matrices are held. */
    public static LoadedModel load(Path path, Weights weights) {
        return formatOf(path).load(path, weights);
    }

    /**
     * The config of a model without reading its weights where the format allows (GGUF, Longspan);
     * a Hugging Face directory is loaded.
     */
    public static ModelConfig config(Path path) {
        return formatOf(path).config(path);
    }

    /** The format of a path; an error saying what the path is not when none recognises it. */
    public static ModelFormat formatOf(Path path) {
        if (Files.isDirectory(path)) {
            if (!isFile(path.resolve("config.json"))) throw new LongspanException(path + ": no config.json (not a model directory)");
        } else if (!Files.exists(path)) {
            throw new LongspanException(path + ": no such file or directory");
        }
        for (ModelFormat f : FORMATS) if (f.recognizes(path)) return f;
        throw new LongspanException(path + ": not a GGUF file (wrong magic), a Hugging Face safetensors directory or a Longspan model directory");
    }

    /** A regular file: false when absent, an error when it cannot be looked at (a folder without permission). */
    static boolean isFile(Path p) {
        try {
            return Files.readAttributes(p, java.nio.file.attribute.BasicFileAttributes.class).isRegularFile();
        } catch (java.nio.file.NoSuchFileException e) {
            return false;
        } catch (IOException e) {
            throw new LongspanException(p + ": cannot read: " + dev.longspan.io.IoErrors.reason(e), e);
        }
    }

    static Map<String, Object> readJson(Path p) {
        try {
            return Json.parseObject(Files.readString(p, StandardCharsets.UTF_8), p.toString());
        } catch (java.nio.file.NoSuchFileException e) {
            throw new LongspanException(p + ": no such file");
        } catch (IOException e) {
            throw new LongspanException(p + ": cannot read: " + dev.longspan.io.IoErrors.reason(e), e);
        }
    }

    static void checkVocab(Tokenizer tok, ModelConfig c, Path src) {
        if (tok.vocabSize() > c.vocabSize()) {
            throw new LongspanException(src + ": the tokenizer has " + tok.vocabSize() + " tokens but the model's embedding only " + c.vocabSize());
        }
    }

    static int[] stopIds(Tokenizer tok, List<Integer> extra) {
        LinkedHashSet<Integer> s = new LinkedHashSet<>();
        for (int id : tok.stopIds()) s.add(id);
        s.addAll(extra);
        for (String t : new String[]{"<|eot_id|>", "<|im_end|>", "<|end_of_text|>", "<|endoftext|>", "<|eom_id|>", "</s>"}) {
            int id = tok.tokenId(t);
            if (id >= 0) s.add(id);
        }
        return s.stream().mapToInt(Integer::intValue).toArray();
    }
}

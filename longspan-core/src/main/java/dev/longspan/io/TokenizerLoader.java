package dev.longspan.io;

import dev.longspan.util.LongspanException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Picks the tokenizer for a path: a GGUF file (its tokenizer.ggml.* metadata), a tokenizer.json, or a
 * directory — with a tokenizer.json (Hugging Face layout) or a Longspan model directory whose
 * config.json says {@code "tokenizer": "byte"} or names no tokenizer (the byte tokenizer).
 */
public final class TokenizerLoader {
    private TokenizerLoader() {}

    public static Tokenizer load(Path path) {
        if (Files.isDirectory(path)) {
            Path tj = path.resolve("tokenizer.json");
            if (Files.isRegularFile(tj)) return BpeTokenizer.fromTokenizerJson(tj);
            Path cfg = path.resolve("config.json");
            if (Files.isRegularFile(cfg)) {
                Map<String, Object> c;
                try {
                    c = Json.parseObject(Files.readString(cfg, StandardCharsets.UTF_8), cfg.toString());
                } catch (IOException e) {
                    throw new LongspanException(cfg + ": cannot read: " + IoErrors.reason(e), e);
                }
                Object t = c.get("tokenizer");
                if (t == null || "byte".equals(t)) return ByteTokenizer.INSTANCE;
                if (t instanceof String s) {
                    Path named = path.resolve(s);
                    if (Files.exists(named)) return load(named);
                }
                throw new LongspanException(cfg + ": tokenizer " + Json.write(t) + " is neither \"byte\" nor a tokenizer file in " + path);
            }
            try (var files = Files.list(path)) {
                var ggufs = files.filter(f -> f.getFileName().toString().endsWith(".gguf")).toList();
                if (ggufs.size() == 1) return load(ggufs.get(0));
            } catch (IOException e) {
                throw new LongspanException(path + ": cannot list: " + IoErrors.reason(e), e);
            }
            // a directory that names no tokenizer is a mistake, not a byte-level model: say so
            throw new LongspanException(path + ": no tokenizer.json, config.json or single .gguf file in this directory");
        }
        if (!Files.exists(path)) throw new LongspanException(path + ": no such file or directory");
        if (GgufFile.looksLikeGguf(path)) {
            try (GgufFile g = GgufFile.open(path)) {
                return GgufTokenizers.fromGguf(g);
            }
        }
        if (path.getFileName().toString().endsWith(".json")) return BpeTokenizer.fromTokenizerJson(path);
        throw new LongspanException(path + ": not a GGUF file, a tokenizer.json or a model directory");
    }
}

package dev.longspan.format;

import dev.longspan.io.GgufFile;
import dev.longspan.io.Json;
import dev.longspan.io.Tokenizer;
import dev.longspan.util.LongspanException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Where a model's chat template comes from, and the prompt ids of a rendered conversation. */
public final class ChatPrompts {
    private ChatPrompts() {}

    /**
     * A model file's Jinja chat template and the texts of its BOS/EOS tokens (the template's
     * bos_token / eos_token variables; "" when the model has none).
     */
    public record Definition(String template, String bosToken, String eosToken, String source) {}

    /**
     * The template of a loaded model: GGUF {@code tokenizer.chat_template}, or {@code chat_template}
     * of a Hugging Face directory's tokenizer_config.json (a string, or the entry named "default"
     * of a list); null when the model has none.
     */
    public static Definition definition(ModelLoader.LoadedModel lm) {
        return definition(lm.tokenizer(), lm.format(), lm.source());
    }

    /** The same from a model's tokenizer, format and path, without its weights. */
    public static Definition definition(Tokenizer tok, ModelLoader.Format format, Path source) {
        String bos = tokenText(tok, tok.bosId()), eos = tokenText(tok, tok.eosId());
        switch (format) {
            case GGUF -> {
                try (GgufFile g = GgufFile.open(source)) {
                    if (!g.has("tokenizer.chat_template")) return null;
                    return new Definition(g.getString("tokenizer.chat_template"), bos, eos, source + ": tokenizer.chat_template");
                }
            }
            case SAFETENSORS -> {
                Path cfg = source.resolve("tokenizer_config.json");
                if (!Files.isRegularFile(cfg)) return null;
                Map<String, Object> json;
                try {
                    json = Json.parseObject(Files.readString(cfg, StandardCharsets.UTF_8), cfg.toString());
                } catch (IOException e) {
                    throw new LongspanException(cfg + ": cannot read: " + e.getMessage(), e);
                }
                String t = switch (json.get("chat_template")) {
                    case String s -> s;
                    case List<?> l -> l.stream().filter(o -> o instanceof Map<?, ?> m && "default".equals(m.get("name")) && m.get("template") instanceof String)
                            .map(o -> (String) ((Map<?, ?>) o).get("template")).findFirst().orElse(null);
                    case null, default -> null;
                };
                if (t == null) return null;
                return new Definition(t, special(json.get("bos_token"), bos), special(json.get("eos_token"), eos), cfg + ": chat_template");
            }
            default -> {
                return null;
            }
        }
    }

    /**
     * Prompt ids of rendered chat text: special tokens in the text become their ids (the tokenizer
     * parses them); BOS goes first when the model adds one and the template did not already write it.
     */
    public static int[] ids(Tokenizer tok, String rendered) {
        int[] body = tok.encode(rendered);
        boolean bos = tok.addBos() && tok.bosId() >= 0 && !(body.length > 0 && body[0] == tok.bosId());
        if (!bos) return body;
        int[] ids = new int[body.length + 1];
        ids[0] = tok.bosId();
        System.arraycopy(body, 0, ids, 1, body.length);
        return ids;
    }

    // tokenizer_config.json writes a special token as its text or as {"content": text, ...}
    private static String special(Object v, String dflt) {
        if (v instanceof String s) return s;
        if (v instanceof Map<?, ?> m && m.get("content") instanceof String s) return s;
        return dflt;
    }

    private static String tokenText(Tokenizer tok, int id) {
        return id < 0 || id >= tok.vocabSize() ? "" : new String(tok.tokenBytes(id), StandardCharsets.UTF_8);
    }
}

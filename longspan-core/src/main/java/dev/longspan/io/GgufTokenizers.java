package dev.longspan.io;

import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Builds the tokenizer stored in a GGUF file's {@code tokenizer.ggml.*} metadata:
 * model {@code gpt2} (byte-level BPE: tokens + merges, pre-tokenizer regex chosen from
 * {@code tokenizer.ggml.pre}) or {@code llama} (SentencePiece-style: tokens + scores + token types).
 */
public final class GgufTokenizers {
    private GgufTokenizers() {}

    static final String LLAMA3_PATTERN = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String QWEN2_PATTERN = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    /** The pre-tokenizer regex for a {@code tokenizer.ggml.pre} value, or null when unknown. */
    static String preTokenizerPattern(String pre) {
        return switch (pre) {
            case "default", "gpt-2", "gpt2", "starcoder", "refact", "olmo", "jais" -> BpeTokenizer.GPT2_PATTERN;
            case "llama3", "llama-bpe", "llama-v3", "smaug-bpe", "falcon3", "pixtral" -> LLAMA3_PATTERN;
            case "qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan" -> QWEN2_PATTERN;
            default -> null;
        };
    }

    public static Tokenizer fromGguf(GgufFile g) {
        String src = g.path().toString();
        if (!g.has("tokenizer.ggml.model")) throw new LongspanException(src + ": has no tokenizer (tokenizer.ggml.model is missing)");
        String model = g.getString("tokenizer.ggml.model");
        String[] tokens = g.getStringArray("tokenizer.ggml.tokens");
        int n = tokens.length;
        int[] types;
        if (g.has("tokenizer.ggml.token_type")) {
            types = g.getIntArray("tokenizer.ggml.token_type");
            if (types.length != n) throw new LongspanException(src + ": " + n + " tokens but " + types.length + " token types");
        } else {
            types = new int[n];
            java.util.Arrays.fill(types, SentencePieceTokenizer.NORMAL);
        }
        int bos = id(g, "tokenizer.ggml.bos_token_id", n), eos = id(g, "tokenizer.ggml.eos_token_id", n);
        int unk = id(g, "tokenizer.ggml.unknown_token_id", n), pad = id(g, "tokenizer.ggml.padding_token_id", n);
        String name = "GGUF " + g.path().getFileName();
        switch (model) {
            case "llama" -> {
                if (!g.has("tokenizer.ggml.scores")) throw new LongspanException(src + ": llama tokenizer without tokenizer.ggml.scores");
                float[] scores = g.getFloatArray("tokenizer.ggml.scores");
                return new SentencePieceTokenizer(name, tokens, scores, types, bos, eos, unk, pad,
                        g.getBool("tokenizer.ggml.add_bos_token", true), g.getBool("tokenizer.ggml.add_space_prefix", true));
            }
            case "gpt2" -> {
                if (!g.has("tokenizer.ggml.merges")) throw new LongspanException(src + ": gpt2 tokenizer without tokenizer.ggml.merges");
                String[] mergeStrings = g.getStringArray("tokenizer.ggml.merges");
                List<String[]> merges = new ArrayList<>(mergeStrings.length);
                for (String m : mergeStrings) {
                    int sp = m.indexOf(' ', 1);
                    if (sp < 0) throw new LongspanException(src + ": merge \"" + m + "\" is not two tokens separated by a space");
                    merges.add(new String[]{m.substring(0, sp), m.substring(sp + 1)});
                }
                String pre = g.getString("tokenizer.ggml.pre", "default");
                String pattern = preTokenizerPattern(pre);
                if (pattern == null) {
                    throw new LongspanException(src + ": pre-tokenizer '" + pre + "' is not supported (supported: default, gpt-2, llama-bpe/llama3, qwen2 and their aliases)");
                }
                List<AddedTokens.Token> added = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    if (types[i] == SentencePieceTokenizer.CONTROL || types[i] == SentencePieceTokenizer.USER_DEFINED) {
                        added.add(new AddedTokens.Token(tokens[i], i, types[i] == SentencePieceTokenizer.CONTROL, false, false, false, false));
                    }
                }
                Pattern p = BpeTokenizer.compileRegex(pattern, src);
                boolean ignoreMerges = pattern.equals(LLAMA3_PATTERN);
                BpeTokenizer t = new BpeTokenizer(name, BpeTokenizer.Mode.BYTE_LEVEL, tokens, merges, added, null,
                        List.of(BpeTokenizer.split(p, "Isolated", false, src)), false, ignoreMerges, null, false, src);
                t.setSpecials(bos, eos, pad, g.getBool("tokenizer.ggml.add_bos_token", false));
                return t;
            }
            default -> throw new LongspanException(src + ": tokenizer model '" + model + "' is not supported (supported: gpt2, llama)");
        }
    }

    private static int id(GgufFile g, String key, int n) {
        if (!g.has(key)) return -1;
        long v = g.getLong(key);
        if (v < 0 || v >= n) throw new LongspanException(g.path() + ": " + key + " = " + v + " is outside the vocabulary of " + n + " tokens");
        return (int) v;
    }
}

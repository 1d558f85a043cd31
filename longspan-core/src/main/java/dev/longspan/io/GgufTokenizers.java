package dev.longspan.io;

import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Builds the tokenizer stored in a GGUF file's {@code tokenizer.ggml.*} metadata the way llama.cpp's
 * {@code llama_vocab::load} reads it: model {@code gpt2} (byte-level BPE, pre-tokenizer chosen by
 * {@code tokenizer.ggml.pre}: {@link GgufBpeTokenizer}; also its variants {@code gemma4}, {@code hybriddna}
 * and {@code whitespace}), {@code llama} (SentencePiece-style:
 * {@link SentencePieceTokenizer}) or {@code bert} (WordPiece: {@link WordPieceTokenizer}).
 *
 * <p>Special token ids start from llama.cpp's defaults for the model; a key overrides its default only
 * when it names a token of the vocabulary (llama.cpp writes 0xFFFFFFFF for "none", and ignores any
 * out-of-range id the same way), and a default outside the vocabulary means "none".
 */
public final class GgufTokenizers {
    private GgufTokenizers() {}

    public static Tokenizer fromGguf(GgufFile g) {
        String src = g.path().toString();
        if (!g.has("tokenizer.ggml.model")) throw new LongspanException(src + ": has no tokenizer (tokenizer.ggml.model is missing)");
        String model = g.getString("tokenizer.ggml.model");
        if (!g.has("tokenizer.ggml.tokens")) throw new LongspanException(src + ": tokenizer.ggml.tokens is missing (the vocabulary)");
        String[] tokens = g.getStringArray("tokenizer.ggml.tokens").clone();
        int n = tokens.length;
        int[] types;
        if (g.has("tokenizer.ggml.token_type")) {
            types = g.getIntArray("tokenizer.ggml.token_type");
            if (types.length < n) throw new LongspanException(src + ": " + n + " tokens but only " + types.length + " token types (tokenizer.ggml.token_type)");
        } else {
            types = new int[n];
            java.util.Arrays.fill(types, LlamaSpecialTokens.NORMAL);
        }
        Map<String, Integer> ids = new HashMap<>(n * 2);
        for (int i = 0; i < n; i++) {
            if (tokens[i].isEmpty()) tokens[i] = "[EMPTY_" + i + "]"; // llama.cpp's name for an empty token
            Integer dup = ids.putIfAbsent(tokens[i], i);
            if (dup != null) {
                throw new LongspanException(src + ": tokenizer.ggml.tokens has \"" + tokens[i] + "\" twice (ids " + dup + " and " + i + ")");
            }
        }
        String name = "GGUF " + g.path().getFileName();
        String pre = g.getString("tokenizer.ggml.pre", "default");
        boolean[][] strip = LlamaSpecialTokens.stripFlags(g.getString("general.name", ""), pre, tokens, types);
        LlamaSpecialTokens specials = new LlamaSpecialTokens(tokens, types, strip[0], strip[1]);
        switch (model) {
            case "llama" -> {
                if (!g.has("tokenizer.ggml.scores")) throw new LongspanException(src + ": llama tokenizer without tokenizer.ggml.scores");
                float[] scores = g.getFloatArray("tokenizer.ggml.scores");
                if (scores.length < n) throw new LongspanException(src + ": " + n + " tokens but only " + scores.length + " scores (tokenizer.ggml.scores)");
                int bos = id(g, "tokenizer.ggml.bos_token_id", 1, n), eos = id(g, "tokenizer.ggml.eos_token_id", 2, n);
                int unk = id(g, "tokenizer.ggml.unknown_token_id", 0, n), pad = id(g, "tokenizer.ggml.padding_token_id", -1, n);
                boolean addBos = addBos(g, true, bos);
                return new SentencePieceTokenizer(name, tokens, java.util.Arrays.copyOf(scores, n), java.util.Arrays.copyOf(types, n), bos, eos, unk, pad,
                        addBos, g.getBool("tokenizer.ggml.add_space_prefix", true), strip[0], strip[1]);
            }
            case "gpt2", "hybriddna", "whitespace", "gemma4" -> {
                // a gemma4 vocabulary always uses the gemma4 pre-tokenizer, whatever the key says
                if (model.equals("gemma4")) pre = "gemma4";
                LlamaPreTokenizer.Spec spec = LlamaPreTokenizer.forName(pre);
                if (spec == null) {
                    throw new LongspanException(src + ": tokenizer.ggml.pre '" + pre + "' is not a pre-tokenizer llama.cpp knows (known: "
                            + String.join(", ", LlamaPreTokenizer.names()) + ")");
                }
                List<String[]> merges = new ArrayList<>();
                if (g.has("tokenizer.ggml.merges")) {
                    for (String m : g.getStringArray("tokenizer.ggml.merges")) {
                        int sp = m.indexOf(' ', 1);
                        // llama.cpp keeps a merge without a space as an (empty, empty) pair that never applies
                        if (sp >= 0) merges.add(new String[]{m.substring(0, sp), m.substring(sp + 1)});
                    }
                } else if (model.equals("gemma4") || !pre.equals("kimi-k2")) {
                    throw new LongspanException(src + ": " + model + " tokenizer without tokenizer.ggml.merges");
                }
                // llama.cpp's defaults: 11 for GPT-2-style vocabularies, none for Gemma 4's
                int dfltBos = model.equals("gemma4") ? -1 : 11;
                int bos = id(g, "tokenizer.ggml.bos_token_id", dfltBos, n), eos = id(g, "tokenizer.ggml.eos_token_id", dfltBos, n);
                if (pre.equals("glm4") || pre.equals("chatglm-bpe")) bos = id(g, "tokenizer.ggml.bos_token_id", -1, n);
                int pad = id(g, "tokenizer.ggml.padding_token_id", -1, n);
                boolean addBos = addBos(g, spec.addBos(), bos);
                if (spec.gemma4() && !addBos) {
                    // llama.cpp adds Gemma 4's BOS even when the file says not to
                    if (bos < 0) throw new LongspanException(src + ": the " + pre + " pre-tokenizer adds a BOS, but tokenizer.ggml.bos_token_id is not set");
                    addBos = true;
                }
                GgufBpeTokenizer.Session session = switch (model) {
                    case "hybriddna" -> GgufBpeTokenizer.Session.HYBRID_DNA;
                    // llama.cpp's BertNormalizer default lowercases; the whitespace pre-tokenizer turns that off
                    case "whitespace" -> g.getBool("tokenizer.ggml.normalizer.lowercase", !pre.equals("whitespace"))
                            ? GgufBpeTokenizer.Session.WHITESPACE_LOWERCASE : GgufBpeTokenizer.Session.WHITESPACE;
                    default -> GgufBpeTokenizer.Session.PLAIN;
                };
                return new GgufBpeTokenizer(name, tokens, java.util.Arrays.copyOf(types, n), ids, merges, spec, session, specials, bos, eos, pad, addBos,
                        stopIds(g, tokens, eos, n), CLEANS_SPACES.contains(pre) ? SpaceCleanup.LLAMA_CPP : SpaceCleanup.NONE, src);
            }
            case "bert" -> {
                int bos = id(g, "tokenizer.ggml.bos_token_id", 101, n), eos = id(g, "tokenizer.ggml.eos_token_id", -1, n);
                int unk = id(g, "tokenizer.ggml.unknown_token_id", 100, n), sep = id(g, "tokenizer.ggml.seperator_token_id", 102, n);
                int pad = id(g, "tokenizer.ggml.padding_token_id", 0, n);
                boolean lower = g.getBool("tokenizer.ggml.normalizer.lowercase", true);
                boolean strip2 = g.getBool("tokenizer.ggml.normalizer.strip_accents", lower);
                return new WordPieceTokenizer(name, tokens, ids, specials, lower, strip2, bos, eos, unk, sep, pad,
                        addBos(g, true, bos));
            }
            default -> throw new LongspanException(src + ": tokenizer.ggml.model '" + model + "' is not supported (supported: gpt2, llama, bert, gemma4, hybriddna, whitespace)");
        }
    }

    /**
     * The pre-tokenizers whose text llama.cpp's {@code llama_detokenize} cleans of tokenization spaces
     * (its BPE default, which the others turn off), as of llama.cpp d32676d.
     */
    private static final java.util.Set<String> CLEANS_SPACES = java.util.Set.of("a.x-4.0", "bloom", "chatglm-bpe", "codeshell",
            "dbrx", "default", "exaone", "exaone-moe", "exaone4", "falcon", "falcon-h1", "falcon3", "gemma4", "gigachat", "glm4",
            "gpt-2", "gpt3-finnish", "granite-embed-multi-311m", "jais", "jais-2", "jina-de", "jina-es", "jina-v1-en",
            "jina-v2-code", "jina-v2-de", "jina-v2-es", "jina-v5-nano", "lfm2", "llama-bpe", "llama-v3", "llama3", "megrez",
            "mellum", "mellum2", "midm-2.0", "minerva-7b", "minicpm5", "modern-bert", "mpt", "olmo", "phi-2", "pixtral",
            "refact", "roberta-bpe", "smaug-bpe", "stablelm2", "starcoder", "whitespace");

    /** tokenizer.ggml.add_bos_token, else the model's default; adding a BOS the file does not have is refused, as llama.cpp does. */
    private static boolean addBos(GgufFile g, boolean dflt, int bos) {
        boolean add = g.getBool("tokenizer.ggml.add_bos_token", dflt);
        if (add && bos < 0) {
            if (g.has("tokenizer.ggml.add_bos_token")) {
                throw new LongspanException(g.path() + ": tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set");
            }
            return false;
        }
        return add;
    }

    /** A special token id: the key's value when it is a token of the vocabulary, else the default (-1 when that is outside too). */
    private static int id(GgufFile g, String key, int dflt, int n) {
        int d = dflt >= 0 && dflt < n ? dflt : -1;
        if (!g.has(key)) return d;
        long v = g.getLong(key) & 0xffffffffL; // llama.cpp reads the ids as uint32
        return v < n ? (int) v : d;
    }

    // EOS, EOT/EOM when given, and the end-of-turn tokens llama.cpp recognises by their text
    private static int[] stopIds(GgufFile g, String[] tokens, int eos, int n) {
        Set<Integer> s = new LinkedHashSet<>();
        if (eos >= 0) s.add(eos);
        for (String k : new String[]{"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
            int id = id(g, k, -1, n);
            if (id >= 0) s.add(id);
        }
        Set<String> eog = Set.of("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
                "<|end_of_text|>", "<|return|>", "<|call|>", "<eos>", "<turn|>", "<|tool_response>");
        for (int i = 0; i < n; i++) if (eog.contains(tokens[i])) s.add(i);
        return s.stream().mapToInt(Integer::intValue).toArray();
    }
}

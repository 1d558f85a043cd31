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
            // llama.cpp takes each token's text as a C string: it ends at the first NUL
            int nul = tokens[i].indexOf('\0');
            if (nul >= 0) tokens[i] = tokens[i].substring(0, nul);
            if (tokens[i].isEmpty()) tokens[i] = "[EMPTY_" + i + "]"; // llama.cpp's name for an empty token
            ids.put(tokens[i], i);   // a text given twice means its last id, as llama.cpp's token_to_id map keeps it
        }
        types = llamaCppTypes(g, tokens, types, ids, n);
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
                SentencePieceTokenizer spm = new SentencePieceTokenizer(name, tokens, java.util.Arrays.copyOf(scores, n), java.util.Arrays.copyOf(types, n), bos, eos, unk, pad,
                        addBos, g.getBool("tokenizer.ggml.add_space_prefix", true), strip[0], strip[1]);
                spm.setStopIds(stopIds(g, ids, eos, n));
                return spm;
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
                        stopIds(g, ids, eos, n), CLEANS_SPACES.contains(pre) ? SpaceCleanup.LLAMA_CPP : SpaceCleanup.NONE, src);
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

    // llama.cpp's end-of-generation tokens by text (d32676d's llama-vocab.cpp)
    private static final List<String> EOG = List.of("<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
            "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
            "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<\uFF5Cend\u2581of\u2581sentence\uFF5C>", "[e~[");

    // per fill-in-the-middle kind: the key that names its id, then the texts llama.cpp finds it by when the key is absent;
    // pad, repo and file-separator tokens also end generation
    private static final String[][] FIM = {
            {"fim_pre", "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\uFF5Cfim\u2581begin\uFF5C>", "<PRE>", "\u2581<PRE>", "<|code_prefix|>", "<|prefix|>"},
            {"fim_suf", "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\uFF5Cfim\u2581hole\uFF5C>", "<SUF>", "\u2581<SUF>", "<|code_suffix|>", "<|suffix|>"},
            {"fim_mid", "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\uFF5Cfim\u2581end\uFF5C>", "<MID>", "\u2581<MID>", "<|code_middle|>", "<|middle|>"},
            {"fim_pad", "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"},
            {"fim_rep", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"},
            {"fim_sep", "<|file_sep|>"}};

    // the id the file gives a fill-in-the-middle kind (under its deprecated key too), or -1
    private static int fimKeyId(GgufFile g, String[] kind, int n) {
        String old = switch (kind[0]) { case "fim_pre" -> "prefix"; case "fim_suf" -> "suffix"; case "fim_mid" -> "middle"; default -> null; };
        int id = id(g, "tokenizer.ggml." + kind[0] + "_token_id", -1, n);
        return id < 0 && old != null ? id(g, "tokenizer.ggml." + old + "_token_id", -1, n) : id;
    }

    // fimKeyId, else the first of the kind's texts in the vocabulary
    private static int fimId(GgufFile g, String[] kind, Map<String, Integer> ids, int n) {
        int id = fimKeyId(g, kind, n);
        if (id >= 0) return id;
        for (int k = 1; k < kind.length; k++) {
            Integer t = ids.get(kind[k]);
            if (t != null) return t;
        }
        return -1;
    }

    /**
     * The token types as llama.cpp's loader leaves them: it turns tokens into control tokens by their text
     * whatever the file says — the end-of-generation texts and each fill-in-the-middle kind's token (found by
     * text when no key names it) — so they are matched whole in text when parsing specials and shown only as
     * specials; and gpt-oss's channel markers into user-defined ones. A file can list such a text as an
     * ordinary token (Qwen's vocabulary has "</s>" among its BPE tokens). When several texts of one
     * fill-in-the-middle kind are present, llama.cpp takes whichever its hash map yields first; here the first listed.
     */
    static int[] llamaCppTypes(GgufFile g, String[] tokens, int[] types, Map<String, Integer> ids, int n) {
        int[] t = java.util.Arrays.copyOf(types, n);
        for (String[] kind : FIM) {
            if (fimKeyId(g, kind, n) >= 0) continue;   // named by the file: its type stands
            int id = fimId(g, kind, ids, n);
            if (id >= 0) t[id] = LlamaSpecialTokens.CONTROL;
        }
        for (String s : EOG) {
            Integer id = ids.get(s);
            if (id != null) t[id] = LlamaSpecialTokens.CONTROL;
        }
        for (String s : List.of("<|channel|>", "<|message|>", "<|start|>", "<|constrain|>")) {
            Integer id = ids.get(s);
            if (id != null) t[id] = LlamaSpecialTokens.USER_DEFINED;
        }
        return t;
    }

    // EOS, EOT/EOM when given, the end-of-generation texts, and the fill-in-the-middle pad, repo and separator tokens
    private static int[] stopIds(GgufFile g, Map<String, Integer> ids, int eos, int n) {
        Set<Integer> s = new LinkedHashSet<>();
        if (eos >= 0) s.add(eos);
        for (String k : new String[]{"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
            int id = id(g, k, -1, n);
            if (id >= 0) s.add(id);
        }
        for (String[] kind : FIM) {
            if (!kind[0].equals("fim_pad") && !kind[0].equals("fim_rep") && !kind[0].equals("fim_sep")) continue;
            int id = fimId(g, kind, ids, n);
            if (id >= 0) s.add(id);
        }
        for (String t : EOG) {
            Integer id = ids.get(t);
            if (id != null) s.add(id);
        }
        return s.stream().mapToInt(Integer::intValue).toArray();
    }
}

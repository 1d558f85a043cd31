package dev.longspan.io;

import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * llama.cpp's BPE pre-tokenizers: the regex list for each {@code tokenizer.ggml.pre} value, applied the way
 * llama.cpp's {@code unicode_regex_split} applies it, so that the words match llama.cpp's on any text.
 *
 * <p>Each regex splits every piece the previous one left into matches and the gaps between them (both kept;
 * an empty match still ends a piece). The GPT-2, Llama 3, Kimi-K2 and AFMoE patterns run as hand-written
 * scanners like llama.cpp's own. Any other regex that names a Unicode category (\p{L}, \p{N}, \p{P}, \p{M},
 * \p{S}, \p{Lu}…) runs, as in llama.cpp, on a "collapsed" text where every non-ASCII code point becomes one
 * stand-in character for its category (so \p{Lu} means any letter there, exactly as in llama.cpp); a regex
 * without categories runs on the code points with non-ASCII whitespace replaced by U+000B. Both run with
 * ECMAScript's ASCII meanings of \s, \d and \w, and with {@code $} meaning the end of the piece.
 */
final class LlamaPreTokenizer {

    static final String GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
    static final String LLAMA3 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String LLAMA3_CI = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String KIMI_K2 = "\\p{Han}+";
    static final String AFMOE_DIGITS = "\\p{AFMoE_digits}";
    private static final String QWEN2 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    private static final String CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
    private static final String GPT4O = "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+" + CONTRACTIONS + "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*" + CONTRACTIONS + "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    private static final String DEEPSEEK3 = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    private static final String BLOOM = " ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+";

    /**
     * What a {@code tokenizer.ggml.pre} value means to llama.cpp's BPE tokenizer.
     *
     * @param byteEncode   words are mapped to GPT-2's byte characters before merging (false: merged as UTF-8
     *                     text, a symbol that is no token falls back to {@code <0xXX>} byte tokens)
     * @param escapeSpaces spaces become U+2581 before splitting and U+2581 a space again when decoding
     *                     (SentencePiece-style BPE: Gemma 4, Sarvam)
     * @param gemma4       llama.cpp's Gemma 4 rules: a word of newlines only that is a token is taken whole, and
     *                     a BOS is always added
     */
    record Spec(List<String> regexes, boolean ignoreMerges, boolean addBos, boolean byteEncode, boolean escapeSpaces, boolean gemma4) {}

    private static Spec spec(boolean ignoreMerges, boolean addBos, String... regexes) {
        return new Spec(List.of(regexes), ignoreMerges, addBos, true, false, false);
    }

    /** llama.cpp's split for SentencePiece-style BPE: merges run over whole lines, newline runs apart. */
    private static final String LINES = "[^\\n]+|[\\n]+";

    /** The pre-tokenizer types, by their llama.cpp names, with the regex lists of llama-vocab.cpp. */
    private static final Map<String, Spec> TYPES;

    static {
        Map<String, Spec> m = new java.util.HashMap<>();
        Spec dflt = spec(false, false, "[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]");
        Spec llama3 = spec(true, true, LLAMA3);
        Spec gpt2 = spec(false, false, GPT2);
        Spec starcoder = spec(false, false, "\\p{N}", GPT2);
        Spec qwen2 = spec(false, false, QWEN2);
        Spec poro = spec(false, false, BLOOM);
        Spec gpt4o = spec(false, false, GPT4O);
        Spec deepseek3 = spec(false, false, "\\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+", DEEPSEEK3);
        m.put("default", dflt);
        for (String n : List.of("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano")) m.put(n, llama3);
        m.put("dbrx", spec(false, false, LLAMA3));
        m.put("smaug-bpe", spec(false, false, LLAMA3));
        m.put("deepseek-llm", spec(false, false, "[\r\n]",
                "\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\ud801\udc00-\ud801\udc4f\ud801\udcb0-\ud801\udcd3\ud801\udcd8-\ud801\udcfb\ud803\udc80-\ud803\udcb2\ud803\udcc0-\ud803\udcf2\ud806\udca0-\ud806\udcdf\ud83a\udd00-\ud83a\udd43]+",
                "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+", "\\s+$", "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+", "\\p{N}+"));
        for (String n : List.of("deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4")) m.put(n, deepseek3);
        m.put("spark2_5", spec(false, false, "\\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
                "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\\r\\n]|\\s+(?!\\S)|\\s+", "\\p{N}"));
        m.put("youtu", spec(true, false, "[\uac00-\ud7a3\u3131-\u318e]+|[\uff01\u2026\u201c\u201d\u2018\u2019\u2014\uff1a\uff1b\uff0c\u3001-\u303f\ufe30-\ufe4f]+|[\u3105-\u312f]+|[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
                "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" + CONTRACTIONS + "?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" + CONTRACTIONS + "?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"));
        m.put("deepseek-coder", spec(false, false, "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+", "\\p{N}"));
        m.put("falcon", spec(false, false, "[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"));
        for (String n : List.of("starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2")) m.put(n, starcoder);
        for (String n : List.of("gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert",
                "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "trillion", "granite-docling", "exaone4")) m.put(n, gpt2);
        m.put("jais-2", spec(false, false, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}"));
        for (String n : List.of("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open")) m.put(n, qwen2);
        m.put("qwen35", spec(false, false, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"));
        for (String n : List.of("poro-chat", "bloom", "gpt3-finnish")) m.put(n, poro);
        for (String n : List.of("glm4", "chatglm-bpe")) m.put(n, spec(false, false, LLAMA3));
        m.put("viking", spec(false, false, BLOOM, "\\p{N}"));
        m.put("tekken", spec(true, true, "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"));
        m.put("chameleon", spec(false, true, "<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}",
                "[\\p{P}!-/:-@\\[-`{-~]", GPT2));
        for (String n : List.of("gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2")) m.put(n, gpt4o);
        m.put("granite-embed-multi-97m", spec(true, false, "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))+" + CONTRACTIONS + "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))*" + CONTRACTIONS + "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"));
        Spec tinyAya = spec(false, false, "\\d{1,3}(?=(?:\\d{3})*\\b)",
                "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" + CONTRACTIONS + "?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" + CONTRACTIONS + "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
        m.put("tiny_aya", tinyAya);
        m.put("cohere2moe", tinyAya);
        m.put("kimi-k2", spec(false, false, KIMI_K2));
        m.put("superbpe", spec(false, false, "\\p{N}+", "(?=(\\d{3})+(?!\\d))"));
        for (String n : List.of("bailingmoe", "bailingmoe2", "llada-moe")) {
            m.put(n, spec(false, false, "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"));
        }
        m.put("seed-coder", spec(false, false, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"));
        m.put("ufakzeka", spec(false, false, "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"));
        m.put("grok-2", qwen2);
        m.put("afmoe", spec(false, false, AFMOE_DIGITS, "[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff\u3040-\u309f\u30a0-\u30ff\uff65-\uff9f\u2f00-\u2fdf\u0e40-\u0e7f\u0e80-\u0eff\u1780-\u17ff\u1000-\u109f\uaa60-\uaa7f\ua9e0-\ua9ff\uac00-\ud7af\u1100-\u11ff]+",
                "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"));
        m.put("laguna", spec(false, false, "[^\\n]+|[\\n]+", QWEN2));
        m.put("exaone-moe", spec(false, false, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"));
        Spec gemma4 = new Spec(List.of(LINES), false, true, false, true, true);
        m.put("gemma4", gemma4);
        m.put("granite-embed-multi-311m", gemma4);
        m.put("sarvam-moe", new Spec(List.of(LINES), false, false, false, true, false));
        // jina-embeddings-v2-base-zh: words are the runs of non-space, merged as UTF-8 text
        m.put("whitespace", new Spec(List.of("\\S+"), false, false, false, false, false));
        m.put("minicpm5", spec(true, false, "\\p{N}{1,3}", "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"));
        TYPES = Map.copyOf(m);
    }

    /** The spec of a {@code tokenizer.ggml.pre} value (absent key: "default"), or null when llama.cpp does not know it. */
    static Spec forName(String pre) {
        return TYPES.get(pre);
    }

    static java.util.Set<String> names() { return new java.util.TreeSet<>(TYPES.keySet()); }

    private final List<String> regexes;
    private final List<Pattern> compiled = new ArrayList<>();  // null entries for the hand-written scanners
    private final List<Boolean> collapsed = new ArrayList<>();

    LlamaPreTokenizer(List<String> regexes, String src) {
        this.regexes = List.copyOf(regexes);
        for (String re : regexes) {
            if (re.equals(GPT2) || re.equals(LLAMA3) || re.equals(LLAMA3_CI) || re.equals(KIMI_K2) || re.equals(AFMOE_DIGITS)) {
                compiled.add(null);
                collapsed.add(false);
                continue;
            }
            boolean usesCategories = CATEGORY.matcher(re).find();
            String javaRe = usesCategories ? collapseRegex(re, src) : re;
            try {
                compiled.add(Pattern.compile(ecmaToJava(javaRe)));
            } catch (java.util.regex.PatternSyntaxException e) {
                throw new LongspanException(src + ": pre-tokenizer regex cannot be compiled: " + e.getDescription());
            }
            collapsed.add(usesCategories);
        }
    }

    private static final Pattern CATEGORY = Pattern.compile("\\\\p\\{(?:N|L|P|M|S|Lu|Ll|Lt|Lm|Lo)}");

    // stand-ins for the categories in the collapsed text, and the ASCII members of each category
    private static final char C_NUMBER = '\u00D1', C_LETTER = '\u00D2', C_PUNCT = '\u00D3', C_MARK = '\u00D4', C_SYMBOL = '\u00D5', C_OTHER = '\u00D0';

    private static String categoryClass(String name) {
        return switch (name) {
            case "N" -> C_NUMBER + "0-9";
            case "P" -> C_PUNCT + "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}";
            case "M" -> String.valueOf(C_MARK);
            case "S" -> C_SYMBOL + "\\$\\+<->\\^`\\|";
            default -> C_LETTER + "A-Za-z"; // L and its subcategories
        };
    }

    /** llama.cpp's regex collapse: each \p{X} becomes a class of its stand-in plus its ASCII members. */
    private static String collapseRegex(String re, String src) {
        StringBuilder out = new StringBuilder();
        boolean inside = false;
        for (int i = 0; i < re.length(); i++) {
            char c = re.charAt(i);
            if (c >= 128) throw new LongspanException(src + ": pre-tokenizer regex mixes Unicode categories and non-ASCII characters (llama.cpp refuses it too)");
            if (c == '[' && (i == 0 || re.charAt(i - 1) != '\\')) { out.append('['); inside = true; continue; }
            if (inside && c == ']' && re.charAt(i - 1) != '\\') { out.append(']'); inside = false; continue; }
            if (c == '\\' && i + 3 < re.length() && re.charAt(i + 1) == 'p' && re.charAt(i + 2) == '{') {
                int close = re.indexOf('}', i + 3);
                if (close >= 0 && close <= i + 10) {
                    String name = re.substring(i + 3, close);
                    if (CATEGORY.matcher(re.substring(i, close + 1)).matches()) {
                        out.append(inside ? "" : "[").append(categoryClass(name)).append(inside ? "" : "]");
                        i = close;
                        continue;
                    }
                }
            }
            out.append(c);
        }
        return out.toString();
    }

    /** ECMAScript's {@code $} (no multiline) is the end of input only; Java's would also match before a final newline. */
    private static String ecmaToJava(String re) {
        StringBuilder out = new StringBuilder();
        boolean inside = false;
        for (int i = 0; i < re.length(); i++) {
            char c = re.charAt(i);
            if (c == '\\' && i + 1 < re.length()) { out.append(c).append(re.charAt(++i)); continue; }
            if (c == '[') inside = true;
            else if (c == ']') inside = false;
            if (c == '$' && !inside) out.append("\\z");
            else out.append(c);
        }
        return out.toString();
    }

    /** The words of a text (as code point strings, before any byte encoding). */
    List<String> split(String text) {
        int[] cps = text.codePoints().toArray();
        List<int[]> ranges = new ArrayList<>(); // [start, end) in code points
        ranges.add(new int[]{0, cps.length});
        String collapsedText = null, plainText = null;
        for (int r = 0; r < regexes.size(); r++) {
            String re = regexes.get(r);
            List<int[]> next = new ArrayList<>();
            Pattern p = compiled.get(r);
            if (p == null) {
                for (int[] rg : ranges) {
                    Scanner s = new Scanner(cps, rg[0], rg[1], next);
                    switch (re) {
                        case GPT2 -> s.gpt2();
                        case KIMI_K2 -> s.kimiK2();
                        case AFMOE_DIGITS -> s.afmoeDigits();
                        default -> s.llama3();
                    }
                }
            } else {
                String t;
                if (collapsed.get(r)) {
                    if (collapsedText == null) collapsedText = collapse(cps);
                    t = collapsedText;
                } else {
                    if (plainText == null) plainText = plain(cps);
                    t = plainText;
                }
                for (int[] rg : ranges) regexSplit(p, t, rg[0], rg[1], next);
            }
            ranges = next;
        }
        List<String> words = new ArrayList<>(ranges.size());
        for (int[] rg : ranges) words.add(new String(cps, rg[0], rg[1] - rg[0]));
        return words;
    }

    // one char per code point: ASCII as is, whitespace as U+000B, anything else as its category's stand-in
    private static String collapse(int[] cps) {
        char[] c = new char[cps.length];
        for (int i = 0; i < cps.length; i++) {
            int cp = cps[i];
            if (cp < 128) c[i] = (char) cp;
            else if (LlamaUnicode.isWhitespace(cp)) c[i] = '\u000B';
            else c[i] = switch (LlamaUnicode.category(cp)) {
                case LlamaUnicode.NUMBER -> C_NUMBER;
                case LlamaUnicode.LETTER -> C_LETTER;
                case LlamaUnicode.PUNCTUATION -> C_PUNCT;
                case LlamaUnicode.MARK -> C_MARK;
                case LlamaUnicode.SYMBOL -> C_SYMBOL;
                default -> C_OTHER;
            };
        }
        return new String(c);
    }

    // the code points themselves, non-ASCII whitespace as U+000B (which ECMAScript's \s matches)
    private static String plain(int[] cps) {
        int[] c = cps.clone();
        for (int i = 0; i < c.length; i++) if (c[i] > 0x7F && LlamaUnicode.isWhitespace(c[i])) c[i] = 0x0B;
        return new String(c, 0, c.length);
    }

    private static void regexSplit(Pattern p, String t, int from, int to, List<int[]> out) {
        if (from == to) return;
        // t is indexed in chars; map the code point range to chars (the plain text may hold surrogate pairs)
        int cFrom = t.offsetByCodePoints(0, from), cTo = t.offsetByCodePoints(cFrom, to - from);
        String piece = t.substring(cFrom, cTo);
        Matcher m = p.matcher(piece);
        int last = 0; // in chars of piece
        int lastCp = from;
        while (m.find()) {
            int s = m.start(), e = m.end();
            int sCp = lastCp + piece.codePointCount(last, s);
            int eCp = sCp + piece.codePointCount(s, e);
            if (sCp > lastCp) out.add(new int[]{lastCp, sCp});
            if (eCp > sCp) out.add(new int[]{sCp, eCp});
            last = e;
            lastCp = eCp;
        }
        if (lastCp < to) out.add(new int[]{lastCp, to});
    }

    /** The hand-written scanners of llama.cpp's unicode.cpp, over one range of code points. */
    private static final class Scanner {
        final int[] cps;
        final int ini, end;
        final List<int[]> out;
        int prevEnd;

        Scanner(int[] cps, int ini, int end, List<int[]> out) {
            this.cps = cps;
            this.ini = ini;
            this.end = end;
            this.out = out;
            this.prevEnd = ini;
        }

        static final int OUT = -1;

        int cpt(int pos) { return pos >= ini && pos < end ? cps[pos] : OUT; }

        int cat(int pos) { return pos >= ini && pos < end ? LlamaUnicode.category(cps[pos]) : 0; }

        boolean letter(int pos) { return cat(pos) == LlamaUnicode.LETTER; }

        boolean number(int pos) { return cat(pos) == LlamaUnicode.NUMBER; }

        boolean ws(int pos) { return pos >= ini && pos < end && LlamaUnicode.isWhitespace(cps[pos]); }

        // [^\s\p{L}\p{N}] within the range
        boolean other(int pos) { return pos >= ini && pos < end && !ws(pos) && !letter(pos) && !number(pos); }

        int add(int e) {
            int len = e - prevEnd;
            if (len > 0) out.add(new int[]{prevEnd, e});
            prevEnd = e;
            return len;
        }

        static int lower(int cp) { return cp == OUT ? OUT : LlamaUnicode.toLower(cp); }

        /** A contraction at pos ('s 't 'm 'd 're 've 'll): its length, or 0. */
        int contraction(int pos, boolean ignoreCase) {
            if (cpt(pos) != '\'' || pos + 1 >= end) return 0;
            int a = ignoreCase ? lower(cpt(pos + 1)) : cpt(pos + 1);
            if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
            if (pos + 2 < end) {
                int b = ignoreCase ? lower(cpt(pos + 2)) : cpt(pos + 2);
                if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
            }
            return 0;
        }

        /** Whitespace runs: \s*[\r\n]+ (when allowed), \s+(?!\S), \s+; else one code point. */
        int whitespace(int pos, boolean newlines) {
            int n = 0, lastNl = -1;
            while (ws(pos + n)) {
                int c = cpt(pos + n);
                if (c == '\r' || c == '\n') lastNl = pos + n + 1;
                n++;
            }
            if (newlines && lastNl >= 0) { add(lastNl); return lastNl; }
            if (n > 1 && cpt(pos + n) != OUT) { add(pos + n - 1); return pos + n - 1; }
            if (n > 0) { add(pos + n); return pos + n; }
            add(pos + 1);
            return pos + 1;
        }

        // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
        void gpt2() {
            for (int pos = ini; pos < end; ) {
                int c = cpt(pos);
                int k = contraction(pos, false);
                if (k > 0) { pos += add(pos + k); continue; }
                int p2 = c == ' ' ? pos + 1 : pos;
                if (letter(p2)) {
                    pos = p2;
                    while (letter(pos)) pos++;
                    add(pos);
                    continue;
                }
                if (number(p2)) {
                    pos = p2;
                    while (number(pos)) pos++;
                    add(pos);
                    continue;
                }
                if (other(p2)) {
                    pos = p2;
                    while (other(pos)) pos++;
                    add(pos);
                    continue;
                }
                pos = whitespace(pos, false);
            }
        }

        // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
        void llama3() {
            for (int pos = ini; pos < end; ) {
                int c = cpt(pos);
                int k = contraction(pos, true);
                if (k > 0) { pos += add(pos + k); continue; }
                if (!(c == '\r' || c == '\n' || number(pos)) && (letter(pos) || letter(pos + 1))) {
                    pos++;
                    while (letter(pos)) pos++;
                    add(pos);
                    continue;
                }
                pos = digitsPunctuationOrSpace(pos, c);
            }
        }

        boolean nonHanLetter(int pos) { return letter(pos) && !LlamaUnicode.isHan(cpt(pos)); }

        // the tail shared by the Llama 3 and Kimi K2 scanners: \p{N}{1,3} | ' '?[^\s\p{L}\p{N}]+[\r\n]* | whitespace;
        // adds the piece(s) found at pos and returns the position after them
        int digitsPunctuationOrSpace(int pos, int c) {
            if (number(pos)) {
                int start = pos;
                while (number(pos)) {
                    if (++pos - start >= 3) { add(pos); start = pos; }
                }
                add(pos);
                return pos;
            }
            int p2 = c == ' ' ? pos + 1 : pos;
            if (other(p2)) {
                pos = p2;
                while (other(pos)) pos++;
                while (cpt(pos) == '\r' || cpt(pos) == '\n') pos++;
                add(pos);
                return pos;
            }
            return whitespace(pos, true);
        }

        // Kimi K2: [\p{Han}]+ | letter words without Han, with optional contractions | \p{N}{1,3} | then as Llama 3
        void kimiK2() {
            for (int pos = ini; pos < end; ) {
                int c = cpt(pos);
                if (c != OUT && LlamaUnicode.isHan(c)) {
                    while (cpt(pos) != OUT && LlamaUnicode.isHan(cpt(pos))) pos++;
                    add(pos);
                    continue;
                }
                boolean leadable = !(c == '\r' || c == '\n' || letter(pos) || number(pos));
                if (nonHanLetter(pos) || (leadable && nonHanLetter(pos + 1))) {
                    int save = pos;
                    if (leadable) pos++;
                    while (nonHanLetter(pos)) pos++;
                    if (pos > save + (leadable ? 1 : 0)) {
                        pos += contraction(pos, true);
                        add(pos);
                        continue;
                    }
                    pos = save;
                }
                pos = digitsPunctuationOrSpace(pos, c);
            }
        }

        // AFMoE: each run of digits split into a leading 1-2 (length mod 3) and then groups of 3; the rest kept whole
        void afmoeDigits() {
            for (int pos = ini; pos < end; ) {
                if (number(pos)) {
                    int start = pos;
                    while (number(pos)) pos++;
                    int count = pos - start, rem = count % 3, cur = start;
                    if (rem > 0) { add(cur + rem); cur += rem; }
                    while (cur < start + count) { add(cur + 3); cur += 3; }
                    continue;
                }
                pos++;
            }
            if (prevEnd < end) add(end);
        }
    }
}

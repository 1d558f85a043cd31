package dev.longspan.io;

import dev.longspan.io.BpeTokenizer.Mode;
import dev.longspan.io.BpeTokenizer.PreTokenizer;
import dev.longspan.util.LongspanException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads a Hugging Face {@code tokenizer.json} (and the {@code tokenizer_config.json} beside it) into a
 * {@link BpeTokenizer}'s typed parts: vocabulary, merges, added tokens, normalizer and pre-tokenizer
 * steps, byte-level or character mode, and special ids. Every error names the file and the field.
 */
final class TokenizerJson {
    private TokenizerJson() {}

    /** The GPT-2 pre-tokenizer regex (ByteLevel with use_regex). */
    static final String GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    /**
     * Loads a Hugging Face tokenizer.json with a BPE model. Special ids come from a
     * tokenizer_config.json beside it when present (bos_token, eos_token, pad_token, add_bos_token).
     */
    static BpeTokenizer load(Path path) {
        String text;
        try {
            text = Files.readString(path, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new LongspanException(path + ": no such file");
        } catch (IOException e) {
            throw new LongspanException(path + ": cannot read: " + e.getMessage(), e);
        }
        Map<String, Object> root = Json.parseObject(text, path.toString());
        String src = path.toString();
        if (!(root.get("model") instanceof Map<?, ?> model)) throw new LongspanException(src + ": no \"model\" object (not a tokenizer.json?)");
        Object type = model.get("type");
        if (type != null && !"BPE".equals(type)) {
            throw new LongspanException(src + ": model.type: tokenizer model type " + type + " is not supported (supported: BPE)");
        }
        if (!(model.get("vocab") instanceof Map<?, ?> vocabMap)) throw new LongspanException(src + ": model has no \"vocab\" object");
        if (!(model.get("merges") instanceof List<?> mergeList)) throw new LongspanException(src + ": model has no \"merges\" list (not a BPE tokenizer.json?)");
        for (String k : new String[]{"continuing_subword_prefix", "end_of_word_suffix"}) {
            if (model.get(k) instanceof String s && !s.isEmpty()) throw new LongspanException(src + ": model." + k + " \"" + s + "\" is not supported");
        }
        String[] vocab = vocab(vocabMap, src);
        List<String[]> merges = merges(mergeList, src);
        List<AddedTokens.Token> added = addedTokens(root.get("added_tokens"), src);
        UnaryOperator<String> normalizer = normalizer(root.get("normalizer"), src, "normalizer");
        List<PreTokenizer> pre = new ArrayList<>();
        preTokenizer(root.get("pre_tokenizer"), src, "pre_tokenizer", pre);
        boolean byteLevel = mentions(root.get("decoder"), "ByteLevel") || mentions(root.get("pre_tokenizer"), "ByteLevel");
        String metaspace = metaspaceDecoder(root.get("decoder"));
        boolean strip = !byteLevel && metaspace == null && (mentions(root.get("decoder"), "Strip") || mentions(root.get("decoder"), "Metaspace"));
        String unk = model.get("unk_token") instanceof String u ? u : null;
        BpeTokenizer tok = new BpeTokenizer("tokenizer.json " + path.getFileName(), byteLevel ? Mode.BYTE_LEVEL : Mode.CHARS, vocab, merges, added,
                normalizer, pre, bool(model, "byte_fallback", false), bool(model, "ignore_merges", false), unk, strip, src);
        if (!byteLevel && bool(model, "byte_fallback", false) && !mentions(root.get("decoder"), "ByteFallback")) tok.decodeByteTokensAsText();
        if (!byteLevel && metaspace != null) tok.firstTokenDropsReplacement(metaspace);
        if (root.get("decoder") == null) tok.decodeAsSpaceJoinedTokens();
        if (bool(model, "fuse_unk", false)) tok.fuseUnknown();
        configureSpecials(tok, path, root);
        return tok;
    }

    // model.vocab: token → id, as an id → token array
    private static String[] vocab(Map<?, ?> vocabMap, String src) {
        int size = 0;
        for (Map.Entry<?, ?> e : vocabMap.entrySet()) {
            if (!(e.getValue() instanceof Long l) || l < 0 || l > 10_000_000) {
                throw new LongspanException(src + ": model.vocab[" + Json.write(e.getKey()) + "]: id " + e.getValue() + " is not a valid id");
            }
            size = Math.max(size, (int) (long) l + 1);
        }
        String[] vocab = new String[size];
        for (Map.Entry<?, ?> e : vocabMap.entrySet()) vocab[(int) (long) (Long) e.getValue()] = (String) e.getKey();
        return vocab;
    }

    // model.merges: "a b" strings (older files) or [a, b] pairs (newer ones, which allow spaces in tokens)
    private static List<String[]> merges(List<?> mergeList, String src) {
        List<String[]> merges = new ArrayList<>(mergeList.size());
        for (int i = 0; i < mergeList.size(); i++) {
            Object m = mergeList.get(i);
            if (m instanceof String s) {
                int sp = s.indexOf(' ', 1);
                if (sp < 0 || s.indexOf(' ', sp + 1) >= 0) {
                    throw new LongspanException(src + ": model.merges[" + i + "]: \"" + s + "\" is not two tokens separated by a space");
                }
                merges.add(new String[]{s.substring(0, sp), s.substring(sp + 1)});
            } else if (m instanceof List<?> l && l.size() == 2 && l.get(0) instanceof String a && l.get(1) instanceof String b) {
                merges.add(new String[]{a, b});
            } else {
                throw new LongspanException(src + ": model.merges[" + i + "]: " + m + " is neither \"a b\" nor [a, b]");
            }
        }
        return merges;
    }

    private static List<AddedTokens.Token> addedTokens(Object node, String src) {
        List<AddedTokens.Token> added = new ArrayList<>();
        if (!(node instanceof List<?> at)) return added;
        for (int i = 0; i < at.size(); i++) {
            Object o = at.get(i);
            if (!(o instanceof Map<?, ?> t) || !(t.get("id") instanceof Long id) || !(t.get("content") instanceof String content)) {
                throw new LongspanException(src + ": added_tokens[" + i + "]: " + o + " lacks id or content");
            }
            added.add(new AddedTokens.Token(content, (int) (long) id, bool(t, "special", false), bool(t, "lstrip", false),
                    bool(t, "rstrip", false), bool(t, "single_word", false), bool(t, "normalized", false)));
        }
        return added;
    }

    // the replacement character of a decoder that is a Metaspace step prepending to the first word
    // (alone, or in a Sequence without a Fuse before it: Metaspace decodes token by token), else null
    private static String metaspaceDecoder(Object decoder) {
        Map<?, ?> m = decoder instanceof Map<?, ?> d ? d : null;
        if (m != null && "Sequence".equals(m.get("type")) && m.get("decoders") instanceof List<?> l) {
            for (Object o : l) {
                if (o instanceof Map<?, ?> step && "Fuse".equals(step.get("type"))) return null;
                if (o instanceof Map<?, ?> step && "Metaspace".equals(step.get("type"))) { m = step; break; }
            }
        }
        if (m == null || !"Metaspace".equals(m.get("type"))) return null;
        String scheme = m.get("prepend_scheme") instanceof String s ? s : (bool(m, "add_prefix_space", true) ? "always" : "never");
        if (scheme.equals("never")) return null;
        return m.get("replacement") instanceof String r ? r : "\u2581";
    }

    private static boolean bool(Map<?, ?> m, String k, boolean dflt) {
        return m.get(k) instanceof Boolean b ? b : dflt;
    }

    private static boolean mentions(Object node, String type) {
        if (node instanceof Map<?, ?> m) {
            if (type.equals(m.get("type"))) return true;
            for (Object v : m.values()) if (mentions(v, type)) return true;
        } else if (node instanceof List<?> l) {
            for (Object v : l) if (mentions(v, type)) return true;
        }
        return false;
    }

    // field: where node stands in the file, for errors ("normalizer.normalizers[1]")
    private static UnaryOperator<String> normalizer(Object node, String src, String field) {
        if (node == null) return null;
        if (!(node instanceof Map<?, ?> m)) throw new LongspanException(src + ": " + field + " is not an object");
        String type = String.valueOf(m.get("type"));
        return switch (type) {
            case "NFC" -> s -> unicode11(s, Normalizer.Form.NFC);
            case "NFD" -> s -> unicode11(s, Normalizer.Form.NFD);
            case "NFKC" -> s -> unicode11(s, Normalizer.Form.NFKC);
            case "NFKD" -> s -> unicode11(s, Normalizer.Form.NFKD);
            case "Lowercase" -> TokenizerJson::lowercase;
            case "Prepend" -> {
                String p = String.valueOf(m.get("prepend"));
                yield s -> s.isEmpty() ? s : p + s;
            }
            case "Replace" -> {
                String to = String.valueOf(m.get("content"));
                if (m.get("pattern") instanceof Map<?, ?> pat && pat.get("String") instanceof String from) yield s -> s.replace(from, to);
                if (m.get("pattern") instanceof Map<?, ?> pat && pat.get("Regex") instanceof String re) {
                    Pattern p = compileRegex(re, src + ": " + field + ".pattern.Regex");
                    String literal = Matcher.quoteReplacement(to);
                    yield s -> p.matcher(s).replaceAll(literal);
                }
                throw new LongspanException(src + ": " + field + ".pattern: a Replace normalizer needs a String or Regex pattern");
            }
            case "Strip" -> {
                boolean left = bool(m, "strip_left", false), right = bool(m, "strip_right", false);
                yield s -> {
                    int a = 0, b = s.length();
                    if (left) while (a < b && AddedTokens.isWhiteSpace(s.charAt(a))) a++;
                    if (right) while (b > a && AddedTokens.isWhiteSpace(s.charAt(b - 1))) b--;
                    return s.substring(a, b);
                };
            }
            // every combining mark (Mn, Mc, Me) removed, as Hugging Face's StripAccents does (after an NFD step)
            case "StripAccents" -> {
                Pattern marks = Pattern.compile("\\p{M}");
                yield s -> marks.matcher(s).replaceAll("");
            }
            case "Sequence" -> {
                List<UnaryOperator<String>> steps = new ArrayList<>();
                if (m.get("normalizers") instanceof List<?> l) {
                    for (int i = 0; i < l.size(); i++) steps.add(normalizer(l.get(i), src, field + ".normalizers[" + i + "]"));
                }
                yield s -> {
                    for (UnaryOperator<String> f : steps) if (f != null) s = f.apply(s);
                    return s;
                };
            }
            default -> throw new LongspanException(src + ": " + field + ".type: normalizer type " + type + " is not supported (supported: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, StripAccents, Sequence)");
        };
    }

    /**
     * Code points added after Unicode 11.0 (ages 12.0 to 16.0) that take part in normalization —
     * with a decomposition, a non-zero combining class, or a component of one — as inclusive ranges.
     * Derived with ICU4J 76.1 (Unicode 16.0): age above 11.0, and NFKD changes it, or its combining
     * class is not 0, or it is a component of a canonical decomposition (294 code points). Every
     * composite added since 11.0 has such a component. LlamaUnicodeTest fails when the JDK's Unicode
     * version changes, the signal to derive this table again.
     */
    private static final int[] NORMALIZING_SINCE_UNICODE_11 = {
            0x00897, 0x0089F, 0x008CA, 0x008D2, 0x00C3C, 0x00C3C, 0x00EBA, 0x00EBA, 0x01715, 0x01715,
            0x01ABF, 0x01ACE, 0x01DFA, 0x01DFA, 0x032FF, 0x032FF, 0x0A7F2, 0x0A7F4, 0x0A82C, 0x0A82C,
            0x0AB69, 0x0AB69, 0x105C9, 0x105C9, 0x105D2, 0x105D2, 0x105DA, 0x105DA, 0x105E4, 0x105E4,
            0x10781, 0x10785, 0x10787, 0x107B0, 0x107B2, 0x107BA, 0x10D69, 0x10D6D, 0x10EAB, 0x10EAC,
            0x10EFD, 0x10EFF, 0x10F82, 0x10F85, 0x11070, 0x11070, 0x11382, 0x11385, 0x1138B, 0x1138B,
            0x1138E, 0x1138E, 0x11390, 0x11391, 0x113B8, 0x113B8, 0x113BB, 0x113BB, 0x113C2, 0x113C2,
            0x113C5, 0x113C5, 0x113C7, 0x113C9, 0x113CE, 0x113D0, 0x11930, 0x11930, 0x11935, 0x11935,
            0x11938, 0x11938, 0x1193D, 0x1193E, 0x11943, 0x11943, 0x119E0, 0x119E0, 0x11F41, 0x11F42,
            0x1611E, 0x16129, 0x1612F, 0x1612F, 0x16D63, 0x16D63, 0x16D67, 0x16D6A, 0x16FF0, 0x16FF1,
            0x1CCD6, 0x1CCF9, 0x1E030, 0x1E06D, 0x1E08F, 0x1E08F, 0x1E130, 0x1E136, 0x1E2AE, 0x1E2AE,
            0x1E2EC, 0x1E2EF, 0x1E4EC, 0x1E4EF, 0x1E5EE, 0x1E5EF, 0x1F16C, 0x1F16C, 0x1FBF0, 0x1FBF9
    };

    private static boolean normalizingSinceUnicode11(int cp) {
        for (int i = 0; i < NORMALIZING_SINCE_UNICODE_11.length && cp >= NORMALIZING_SINCE_UNICODE_11[i]; i += 2) {
            if (cp <= NORMALIZING_SINCE_UNICODE_11[i + 1]) return true;
        }
        return false;
    }

    /**
     * A Unicode normalization form as Hugging Face's normalizers compute it: their tables are Unicode
     * 11.0's (the JDK's are 16.0's), so a character added since is unassigned to them — no
     * decomposition, combining class 0, no composition. Such a character blocks reordering and
     * composition across it, so the text between them is normalized piece by piece and the
     * characters themselves are kept as they are (found comparing with tokenizers 0.23.2: Qwen3's
     * NFC, NFKC of Cyrillic Extended-D modifier letters).
     */
    static String unicode11(String s, Normalizer.Form form) {
        StringBuilder out = null;
        int from = 0;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            int next = i + Character.charCount(cp);
            if (cp >= 0x897 && normalizingSinceUnicode11(cp)) {
                if (out == null) out = new StringBuilder(s.length() + 8);
                out.append(Normalizer.normalize(s.substring(from, i), form)).appendCodePoint(cp);
                from = next;
            }
            i = next;
        }
        if (out == null) return Normalizer.normalize(s, form);
        return out.append(Normalizer.normalize(s.substring(from), form)).toString();
    }

    /**
     * Hugging Face's Lowercase normalizer: each character lowercased on its own (Rust's
     * char::to_lowercase, full mappings such as U+0130 → "i̇", no context), so a final capital sigma
     * becomes σ where Java's String.toLowerCase writes ς.
     */
    static String lowercase(String s) {
        StringBuilder b = new StringBuilder(s.length());
        s.codePoints().forEach(cp -> {
            if (cp < 0x80) b.append((char) Character.toLowerCase(cp));
            else b.append(Character.toString(cp).toLowerCase(java.util.Locale.ROOT));
        });
        return b.toString();
    }

    /** Compiles a Hugging Face (Oniguruma) regex for java.util.regex: \s, \d, \w become Unicode-aware as in Oniguruma. */
    private static Pattern compileRegex(String re, String where) {
        try {
            return Pattern.compile(re, Pattern.UNICODE_CHARACTER_CLASS);
        } catch (java.util.regex.PatternSyntaxException e) {
            throw new LongspanException(where + ": pre-tokenizer regex cannot be compiled: " + e.getDescription());
        }
    }

    /** A regex split with Hugging Face's behaviours (Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous). */
    private static PreTokenizer split(Pattern p, String behavior, boolean invert, String where) {
        return switch (behavior) {
            case "Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous" -> (piece, first, out) -> {
                // segments alternate between gaps and matches; each as [start, end, isMatch]
                List<int[]> segs = new ArrayList<>();
                Matcher m = p.matcher(piece);
                int last = 0;
                while (m.find()) {
                    if (m.end() == m.start()) continue;
                    if (m.start() > last) segs.add(new int[]{last, m.start(), invert ? 1 : 0});
                    segs.add(new int[]{m.start(), m.end(), invert ? 0 : 1});
                    last = m.end();
                }
                if (last < piece.length()) segs.add(new int[]{last, piece.length(), invert ? 1 : 0});
                switch (behavior) {
                    case "Isolated" -> { for (int[] s : segs) out.add(piece.substring(s[0], s[1])); }
                    case "Removed" -> { for (int[] s : segs) if (s[2] == 0) out.add(piece.substring(s[0], s[1])); }
                    case "MergedWithPrevious" -> { // a match ends the piece it follows
                        int start = 0;
                        for (int[] s : segs) if (s[2] == 1) { out.add(piece.substring(start, s[1])); start = s[1]; }
                        if (start < piece.length()) out.add(piece.substring(start));
                    }
                    case "MergedWithNext" -> { // a match starts a new piece
                        int start = 0;
                        for (int[] s : segs) if (s[2] == 1 && s[0] > start) { out.add(piece.substring(start, s[0])); start = s[0]; }
                        if (start < piece.length()) out.add(piece.substring(start));
                    }
                    default -> { // Contiguous: consecutive matches join
                        int k = 0;
                        while (k < segs.size()) {
                            int[] s = segs.get(k);
                            int end = s[1];
                            while (s[2] == 1 && k + 1 < segs.size() && segs.get(k + 1)[2] == 1) end = segs.get(++k)[1];
                            out.add(piece.substring(s[0], end));
                            k++;
                        }
                    }
                }
            };
            default -> throw new LongspanException(where + ": Split behavior " + behavior + " is not supported");
        };
    }

    // field: where node stands in the file, for errors ("pre_tokenizer.pretokenizers[0]")
    private static void preTokenizer(Object node, String src, String field, List<PreTokenizer> out) {
        if (node == null) return;
        String where = src + ": " + field;
        if (!(node instanceof Map<?, ?> m)) throw new LongspanException(where + " is not an object");
        String type = String.valueOf(m.get("type"));
        switch (type) {
            case "Sequence" -> {
                if (m.get("pretokenizers") instanceof List<?> l) {
                    for (int i = 0; i < l.size(); i++) preTokenizer(l.get(i), src, field + ".pretokenizers[" + i + "]", out);
                }
            }
            case "Split" -> {
                Pattern p;
                if (m.get("pattern") instanceof Map<?, ?> pat && pat.get("Regex") instanceof String re) p = compileRegex(re, where + ".pattern.Regex");
                else if (m.get("pattern") instanceof Map<?, ?> pat && pat.get("String") instanceof String s) p = Pattern.compile(Pattern.quote(s));
                else throw new LongspanException(where + ".pattern: Split pre-tokenizer without a Regex or String pattern");
                out.add(split(p, hfBehavior(String.valueOf(m.get("behavior")), where + ".behavior"), bool(m, "invert", false), where + ".behavior"));
            }
            case "ByteLevel" -> {
                boolean prefix = bool(m, "add_prefix_space", false);
                if (prefix) out.add((piece, first, o) -> o.add(piece.startsWith(" ") ? piece : " " + piece));
                if (bool(m, "use_regex", true)) out.add(split(compileRegex(GPT2_PATTERN, where), "Isolated", false, where));
            }
            case "Whitespace" -> out.add(split(compileRegex("\\w+|[^\\w\\s]+", where), "Removed", true, where));
            case "WhitespaceSplit" -> out.add(split(compileRegex("\\s+", where), "Removed", false, where));
            case "Punctuation" -> {
                // Rust: is_ascii_punctuation (symbols such as $ + < = > ^ ` | ~ too) or a Unicode punctuation category
                String behavior = m.get("behavior") instanceof String b ? hfBehavior(b, where) : "Isolated";
                out.add(split(Pattern.compile("[\\p{P}!-/:-@\\[-`{-~]"), behavior, false, where + ".behavior"));
            }
            case "CharDelimiterSplit" -> {
                if (!(m.get("delimiter") instanceof String d) || d.codePointCount(0, d.length()) != 1) {
                    throw new LongspanException(where + ".delimiter: expected one character");
                }
                out.add(split(Pattern.compile(Pattern.quote(d)), "Removed", false, where));
            }
            case "Digits" -> {
                boolean individual = bool(m, "individual_digits", false);
                // Rust's char::is_numeric: every number category (Nd, Nl, No: "²", "Ⅻ", "½" too)
                out.add(split(Pattern.compile(individual ? "\\p{N}" : "\\p{N}+"), "Isolated", false, where));
            }
            case "Metaspace" -> {
                String rep = m.get("replacement") instanceof String r ? r : "\u2581";
                String scheme = m.get("prepend_scheme") instanceof String s ? s : (bool(m, "add_prefix_space", true) ? "always" : "never");
                boolean splitWords = bool(m, "split", true);
                out.add((piece, first, o) -> {
                    String s = piece.replace(" ", rep);
                    if ((scheme.equals("always") || (scheme.equals("first") && first)) && !s.startsWith(rep)) s = rep + s;
                    if (!splitWords) { o.add(s); return; }
                    int start = 0;
                    for (int k = s.indexOf(rep, 1); k >= 0; k = s.indexOf(rep, k + 1)) {
                        if (k > start) { o.add(s.substring(start, k)); start = k; }
                    }
                    o.add(s.substring(start));
                });
            }
            default -> throw new LongspanException(where + ".type: pre-tokenizer type " + type + " is not supported (supported: Sequence, Split, ByteLevel, Digits, Metaspace, Whitespace, WhitespaceSplit, Punctuation, CharDelimiterSplit)");
        }
    }

    // a Split behaviour as tokenizer.json writes it ("Isolated"; older files and the Python API: "isolated", "merged_with_previous")
    private static String hfBehavior(String b, String where) {
        return switch (b) {
            case "Isolated", "isolated" -> "Isolated";
            case "Removed", "removed" -> "Removed";
            case "MergedWithPrevious", "merged_with_previous" -> "MergedWithPrevious";
            case "MergedWithNext", "merged_with_next" -> "MergedWithNext";
            case "Contiguous", "contiguous" -> "Contiguous";
            default -> throw new LongspanException(where + ": Split behavior " + b + " is not supported (Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous)");
        };
    }

    // the special token a TemplateProcessing post-processor (alone or in a Sequence) writes first for a single text, or null
    private static String templateFirstSpecial(Object pp) {
        if (!(pp instanceof Map<?, ?> m)) return null;
        if ("Sequence".equals(m.get("type")) && m.get("processors") instanceof List<?> l) {
            for (Object o : l) {
                String t = templateFirstSpecial(o);
                if (t != null) return t;
            }
            return null;
        }
        if (m.get("single") instanceof List<?> single && !single.isEmpty() && single.get(0) instanceof Map<?, ?> first
                && first.get("SpecialToken") instanceof Map<?, ?> st && st.get("id") instanceof String id) return id;
        return null;
    }

    private static String tokenContent(Object v) {
        if (v instanceof String s) return s;
        if (v instanceof Map<?, ?> m && m.get("content") instanceof String s) return s;
        return null;
    }

    private static void configureSpecials(BpeTokenizer tok, Path path, Map<String, Object> root) {
        Path cfg = path.resolveSibling("tokenizer_config.json");
        String bos = null, eos = null, pad = null;
        boolean addBos = false;
        if (Files.isRegularFile(cfg)) {
            try {
                Map<String, Object> c = Json.parseObject(Files.readString(cfg, StandardCharsets.UTF_8), cfg.toString());
                bos = tokenContent(c.get("bos_token"));
                eos = tokenContent(c.get("eos_token"));
                pad = tokenContent(c.get("pad_token"));
                if (c.get("add_bos_token") instanceof Boolean b) addBos = b && bos != null;
                else {
                    // no add_bos_token (Llama 3's files): the post-processor's template says, as Hugging Face's encode does
                    String t = templateFirstSpecial(root.get("post_processor"));
                    if (t != null && (bos == null || bos.equals(t))) { bos = t; addBos = true; }
                }
                if (c.get("clean_up_tokenization_spaces") instanceof Boolean b && b) tok.setSpaceCleanup(SpaceCleanup.HUGGING_FACE);
            } catch (IOException e) {
                throw new LongspanException(cfg + ": cannot read: " + e.getMessage(), e);
            }
        } else {
            // no config: a template post-processor that starts with a special token means BOS is added
            String t = templateFirstSpecial(root.get("post_processor"));
            if (t != null) {
                bos = t;
                addBos = true;
            }
            for (String c : new String[]{"<s>", "<|begin_of_text|>", "<bos>"}) if (bos == null && tok.tokenId(c) >= 0) bos = c;
            for (String c : new String[]{"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"}) if (eos == null && tok.tokenId(c) >= 0) eos = c;
        }
        tok.setSpecials(bos == null ? -1 : tok.tokenId(bos), eos == null ? -1 : tok.tokenId(eos), pad == null ? -1 : tok.tokenId(pad), addBos);
    }
}

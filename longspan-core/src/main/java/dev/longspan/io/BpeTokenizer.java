package dev.longspan.io;

import dev.longspan.util.LongspanException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Byte-pair encoding, pure Java: byte-level BPE (GPT-2, Llama 3, Qwen) and SentencePiece-style
 * BPE with byte fallback, loaded from a Hugging Face {@code tokenizer.json}
 * ({@link #fromTokenizerJson}) or built from a GGUF {@code gpt2} vocabulary ({@link GgufTokenizers}).
 *
 * <p>Encoding: added tokens are split off first (leftmost-longest), the rest is normalized,
 * pre-tokenized (regex split, byte-level mapping, metaspace, digits), and each pre-token is merged
 * with a rank-ordered heap over a linked list of symbols (lowest rank first, leftmost on ties —
 * Hugging Face's order); results are cached per pre-token.
 */
public final class BpeTokenizer implements Tokenizer {

    /** How pre-tokens are turned into initial symbols and tokens back into bytes. */
    enum Mode { BYTE_LEVEL, CHARS }

    /** A pre-tokenizer step: splits each input piece, appending to out. */
    interface PreTokenizer {
        void split(String piece, boolean first, List<String> out);
    }

    // ---- GPT-2's byte ↔ unicode map -----------------------------------------------------------

    static final char[] BYTE_TO_CHAR = new char[256];
    static final int[] CHAR_TO_BYTE = new int[512];

    static {
        Arrays.fill(CHAR_TO_BYTE, -1);
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + n++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    /** The GPT-2 pre-tokenizer regex (used by ByteLevel with use_regex and GGUF pre "gpt-2"). */
    static final String GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    // ---- state -------------------------------------------------------------------------------

    private final String name;
    private final Mode mode;
    private final String[] vocab;             // id → token string as in the vocabulary
    private final Map<String, Integer> ids;   // token string → id
    private final byte[][] bytes;             // id → decoded bytes
    private final LongIntMap mergeRank;       // (left id, right id) → rank
    private final int[] mergeResult;          // rank → merged id
    private final List<String[]> merges;      // rank → (left, right) token strings
    private final int[] byteIds;              // BYTE_LEVEL: byte → id of its one-char token; CHARS: id of <0xXX> or -1
    private final boolean byteFallback;
    private final boolean ignoreMerges;
    private final int unkId;
    private final AddedTokens rawAdded;       // matched on raw text
    private final AddedTokens normAdded;      // matched after normalization
    private final boolean[] special;          // id → added special token
    private final UnaryOperator<String> normalizer;
    private final List<PreTokenizer> preTokenizers;
    private final boolean stripLeadingSpace;  // decoder strips one leading space (SentencePiece-style)
    private int bos = -1, eos = -1, pad = -1;
    private boolean addBos;
    private int[] stopIds = new int[0];
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    BpeTokenizer(String name, Mode mode, String[] vocab, List<String[]> merges, List<AddedTokens.Token> added,
                 UnaryOperator<String> normalizer, List<PreTokenizer> preTokenizers, boolean byteFallback,
                 boolean ignoreMerges, String unkToken, boolean stripLeadingSpace, String source) {
        this.name = name;
        this.mode = mode;
        this.normalizer = normalizer;
        this.preTokenizers = List.copyOf(preTokenizers);
        this.byteFallback = byteFallback;
        this.ignoreMerges = ignoreMerges;
        this.stripLeadingSpace = stripLeadingSpace;
        int size = vocab.length;
        for (AddedTokens.Token t : added) size = Math.max(size, t.id() + 1);
        this.vocab = Arrays.copyOf(vocab, size);
        this.ids = new HashMap<>(size * 2);
        for (int i = 0; i < vocab.length; i++) if (vocab[i] != null) ids.putIfAbsent(vocab[i], i);
        this.special = new boolean[size];
        List<AddedTokens.Token> raw = new ArrayList<>(), norm = new ArrayList<>();
        for (AddedTokens.Token t : added) {
            if (this.vocab[t.id()] == null) this.vocab[t.id()] = t.content();
            ids.putIfAbsent(t.content(), t.id());
            special[t.id()] = t.special();
            (t.normalized() && normalizer != null ? norm : raw).add(t);
        }
        this.rawAdded = new AddedTokens(raw);
        this.normAdded = new AddedTokens(norm);
        this.unkId = unkToken == null ? -1 : ids.getOrDefault(unkToken, -1);

        this.byteIds = new int[256];
        for (int b = 0; b < 256; b++) {
            String key = mode == Mode.BYTE_LEVEL ? String.valueOf(BYTE_TO_CHAR[b]) : String.format("<0x%02X>", b);
            byteIds[b] = ids.getOrDefault(key, -1);
        }

        this.merges = List.copyOf(merges);
        this.mergeRank = new LongIntMap(merges.size() * 2);
        this.mergeResult = new int[merges.size()];
        for (int r = 0; r < merges.size(); r++) {
            String[] m = merges.get(r);
            Integer a = ids.get(m[0]), b = ids.get(m[1]), c = ids.get(m[0] + m[1]);
            if (a == null || b == null || c == null) {
                throw new LongspanException(source + ": merge " + (r + 1) + " '" + m[0] + " " + m[1] + "' uses a token that is not in the vocabulary");
            }
            long key = pair(a, b);
            if (mergeRank.get(key) < 0) {
                mergeRank.put(key, r);
                mergeResult[r] = c;
            }
        }

        this.bytes = new byte[size][];
        for (int i = 0; i < size; i++) this.bytes[i] = decodeToken(this.vocab[i]);
    }

    private static long pair(int a, int b) {
        return ((long) a << 32) | (b & 0xffffffffL);
    }

    private byte[] decodeToken(String t) {
        if (t == null) return new byte[0];
        if (mode == Mode.BYTE_LEVEL) {
            byte[] out = new byte[t.length()];
            for (int k = 0; k < t.length(); k++) {
                char c = t.charAt(k);
                int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
                if (b < 0) return t.getBytes(StandardCharsets.UTF_8); // not byte-level text: raw (like HF's ByteLevel decoder)
                out[k] = (byte) b;
            }
            return out;
        }
        if (byteFallback && t.length() == 6 && t.startsWith("<0x") && t.endsWith(">")) {
            try {
                return new byte[]{(byte) Integer.parseInt(t.substring(3, 5), 16)};
            } catch (NumberFormatException ignored) {
                // an ordinary token that looks similar
            }
        }
        return t.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
    }

    // ---- encoding ----------------------------------------------------------------------------

    @Override
    public int[] encode(String text) {
        IntList out = new IntList();
        boolean first = true;
        for (AddedTokens.Piece p : rawAdded.split(text)) {
            if (p.isToken()) {
                out.add(p.id());
            } else {
                String s = normalizer == null ? p.text() : normalizer.apply(p.text());
                for (AddedTokens.Piece q : normAdded.split(s)) {
                    if (q.isToken()) out.add(q.id());
                    else encodeText(q.text(), first, out);
                    first = false;
                }
            }
            first = false;
        }
        return out.toArray();
    }

    private void encodeText(String s, boolean first, IntList out) {
        List<String> pieces = new ArrayList<>();
        pieces.add(s);
        for (PreTokenizer pt : preTokenizers) {
            List<String> next = new ArrayList<>();
            boolean f = first;
            for (String piece : pieces) {
                pt.split(piece, f, next);
                f = false;
            }
            pieces = next;
        }
        for (String piece : pieces) {
            if (piece.isEmpty()) continue;
            int[] r = cache.get(piece);
            if (r == null) {
                r = bpe(piece);
                if (cache.size() > 200_000) cache.clear();
                cache.put(piece, r);
            }
            out.addAll(r);
        }
    }

    // initial symbols of a pre-token: its bytes (byte-level) or its characters (with byte fallback)
    private int[] symbols(String piece) {
        IntList s = new IntList();
        if (mode == Mode.BYTE_LEVEL) {
            for (byte b : piece.getBytes(StandardCharsets.UTF_8)) {
                int id = byteIds[b & 0xff];
                if (id >= 0) s.add(id);
                else if (unkId >= 0) s.add(unkId);
            }
        } else {
            for (int k = 0; k < piece.length(); ) {
                int cp = piece.codePointAt(k);
                String ch = piece.substring(k, k + Character.charCount(cp));
                k += ch.length();
                Integer id = ids.get(ch);
                if (id != null) { s.add(id); continue; }
                boolean done = false;
                if (byteFallback) {
                    byte[] bs = ch.getBytes(StandardCharsets.UTF_8);
                    done = true;
                    for (byte b : bs) if (byteIds[b & 0xff] < 0) done = false;
                    if (done) for (byte b : bs) s.add(byteIds[b & 0xff]);
                }
                if (!done && unkId >= 0) s.add(unkId);
            }
        }
        return s.toArray();
    }

    int[] bpe(String piece) {
        if (ignoreMerges) {
            Integer whole = ids.get(mode == Mode.BYTE_LEVEL ? toByteLevel(piece) : piece);
            if (whole != null) return new int[]{whole};
        }
        int[] id = symbols(piece);
        int n = id.length;
        if (n < 2) return id;
        int[] next = new int[n], prev = new int[n];
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        LongHeap heap = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            int r = mergeRank.get(pair(id[i], id[i + 1]));
            if (r >= 0) heap.push(((long) r << 32) | i);
        }
        while (!heap.isEmpty()) {
            long e = heap.pop();
            int r = (int) (e >>> 32), i = (int) e;
            if (id[i] < 0) continue;              // merged away
            int j = next[i];
            if (j < 0) continue;
            if (mergeRank.get(pair(id[i], id[j])) != r) continue; // stale entry
            id[i] = mergeResult[r];
            id[j] = -1;
            next[i] = next[j];
            if (next[j] >= 0) prev[next[j]] = i;
            if (prev[i] >= 0) {
                int r2 = mergeRank.get(pair(id[prev[i]], id[i]));
                if (r2 >= 0) heap.push(((long) r2 << 32) | prev[i]);
            }
            if (next[i] >= 0) {
                int r3 = mergeRank.get(pair(id[i], id[next[i]]));
                if (r3 >= 0) heap.push(((long) r3 << 32) | i);
            }
        }
        IntList out = new IntList();
        for (int i = 0; i >= 0; i = next[i]) out.add(id[i]);
        return out.toArray();
    }

    static String toByteLevel(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        char[] c = new char[b.length];
        for (int i = 0; i < b.length; i++) c[i] = BYTE_TO_CHAR[b[i] & 0xff];
        return new String(c);
    }

    // ---- decoding ----------------------------------------------------------------------------

    @Override
    public byte[] tokenBytes(int id) {
        if (id < 0 || id >= bytes.length) {
            throw new LongspanException("token id " + id + " is outside the vocabulary (0.." + (bytes.length - 1) + ") of " + name);
        }
        return bytes[id];
    }

    @Override
    public String decode(int[] ids, int from, int to) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int i = from; i < to; i++) {
            byte[] b = tokenBytes(ids[i]);
            if (stripLeadingSpace && out.size() == 0 && i == from && b.length > 0 && b[0] == ' ') out.write(b, 1, b.length - 1);
            else out.writeBytes(b);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    @Override public int vocabSize() { return vocab.length; }
    @Override public int bosId() { return bos; }
    @Override public int eosId() { return eos; }
    @Override public int padId() { return pad; }
    @Override public int[] stopIds() { return stopIds.clone(); }
    @Override public boolean addBos() { return addBos; }

    @Override
    public int tokenId(String token) {
        Integer id = ids.get(token);
        return id == null ? -1 : id;
    }

    /** The token's string in the vocabulary (byte-level tokens in their GPT-2 unicode form). */
    public String token(int id) { return vocab[id]; }

    /** The merges in rank order as "left right" strings (GGUF's tokenizer.ggml.merges form). */
    public String[] mergeStrings() {
        String[] out = new String[merges.size()];
        for (int i = 0; i < out.length; i++) out[i] = merges.get(i)[0] + " " + merges.get(i)[1];
        return out;
    }

    /** True when id is an added token marked special. */
    public boolean isSpecial(int id) { return id >= 0 && id < special.length && special[id]; }

    @Override
    public String describe() {
        return name + " (" + (mode == Mode.BYTE_LEVEL ? "byte-level BPE" : "BPE" + (byteFallback ? " with byte fallback" : ""))
                + ", " + vocab.length + " tokens, " + mergeResult.length + " merges)";
    }

    /** Sets the special ids; stop ids are EOS plus the known end-of-turn tokens present in the vocabulary. */
    void setSpecials(int bos, int eos, int pad, boolean addBos) {
        this.bos = bos;
        this.eos = eos;
        this.pad = pad;
        this.addBos = addBos;
        IntList stops = new IntList();
        if (eos >= 0) stops.add(eos);
        for (String s : new String[]{"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<|eom_id|>", "<end_of_turn>", "<|end|>"}) {
            int id = tokenId(s);
            if (id >= 0 && id < special.length && special[id] && !stops.contains(id)) stops.add(id);
        }
        this.stopIds = stops.toArray();
    }

    // ---- tokenizer.json ----------------------------------------------------------------------

    /**
     * Loads a Hugging Face tokenizer.json with a BPE model. Special ids come from a
     * tokenizer_config.json beside it when present (bos_token, eos_token, pad_token, add_bos_token).
     */
    public static BpeTokenizer fromTokenizerJson(Path path) {
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
            throw new LongspanException(src + ": tokenizer model type " + type + " is not supported (supported: BPE)");
        }
        if (!(model.get("vocab") instanceof Map<?, ?> vocabMap)) throw new LongspanException(src + ": model has no \"vocab\" object");
        if (!(model.get("merges") instanceof List<?> mergeList)) throw new LongspanException(src + ": model has no \"merges\" list (not a BPE tokenizer.json?)");
        for (String k : new String[]{"continuing_subword_prefix", "end_of_word_suffix"}) {
            if (model.get(k) instanceof String s && !s.isEmpty()) throw new LongspanException(src + ": model." + k + " \"" + s + "\" is not supported");
        }
        int size = 0;
        for (Object v : vocabMap.values()) {
            if (!(v instanceof Long l) || l < 0 || l > 10_000_000) throw new LongspanException(src + ": vocab id " + v + " is not a valid id");
            size = Math.max(size, (int) (long) l + 1);
        }
        String[] vocab = new String[size];
        for (Map.Entry<?, ?> e : vocabMap.entrySet()) vocab[(int) (long) (Long) e.getValue()] = (String) e.getKey();
        List<String[]> merges = new ArrayList<>(mergeList.size());
        for (Object m : mergeList) {
            if (m instanceof String s) {
                int sp = s.indexOf(' ', 1);
                if (sp < 0 || s.indexOf(' ', sp + 1) >= 0) throw new LongspanException(src + ": merge \"" + s + "\" is not two tokens separated by a space");
                merges.add(new String[]{s.substring(0, sp), s.substring(sp + 1)});
            } else if (m instanceof List<?> l && l.size() == 2 && l.get(0) instanceof String a && l.get(1) instanceof String b) {
                merges.add(new String[]{a, b});
            } else {
                throw new LongspanException(src + ": merge " + m + " is neither \"a b\" nor [a, b]");
            }
        }
        List<AddedTokens.Token> added = new ArrayList<>();
        if (root.get("added_tokens") instanceof List<?> at) {
            for (Object o : at) {
                if (!(o instanceof Map<?, ?> t) || !(t.get("id") instanceof Long id) || !(t.get("content") instanceof String content)) {
                    throw new LongspanException(src + ": added token " + o + " lacks id or content");
                }
                added.add(new AddedTokens.Token(content, (int) (long) id, bool(t, "special", false), bool(t, "lstrip", false),
                        bool(t, "rstrip", false), bool(t, "single_word", false), bool(t, "normalized", false)));
            }
        }
        UnaryOperator<String> normalizer = normalizer(root.get("normalizer"), src);
        List<PreTokenizer> pre = new ArrayList<>();
        preTokenizer(root.get("pre_tokenizer"), src, pre);
        boolean byteLevel = mentions(root.get("decoder"), "ByteLevel") || mentions(root.get("pre_tokenizer"), "ByteLevel");
        boolean strip = !byteLevel && (mentions(root.get("decoder"), "Strip") || mentions(root.get("decoder"), "Metaspace"));
        String unk = model.get("unk_token") instanceof String u ? u : null;
        BpeTokenizer tok = new BpeTokenizer("tokenizer.json " + path.getFileName(), byteLevel ? Mode.BYTE_LEVEL : Mode.CHARS, vocab, merges, added,
                normalizer, pre, bool(model, "byte_fallback", false), bool(model, "ignore_merges", false), unk, strip, src);
        configureSpecials(tok, path, root);
        return tok;
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

    private static UnaryOperator<String> normalizer(Object node, String src) {
        if (node == null) return null;
        if (!(node instanceof Map<?, ?> m)) throw new LongspanException(src + ": normalizer is not an object");
        String type = String.valueOf(m.get("type"));
        return switch (type) {
            case "NFC" -> s -> Normalizer.normalize(s, Normalizer.Form.NFC);
            case "NFD" -> s -> Normalizer.normalize(s, Normalizer.Form.NFD);
            case "NFKC" -> s -> Normalizer.normalize(s, Normalizer.Form.NFKC);
            case "NFKD" -> s -> Normalizer.normalize(s, Normalizer.Form.NFKD);
            case "Lowercase" -> s -> s.toLowerCase(java.util.Locale.ROOT);
            case "Prepend" -> {
                String p = String.valueOf(m.get("prepend"));
                yield s -> s.isEmpty() ? s : p + s;
            }
            case "Replace" -> {
                if (!(m.get("pattern") instanceof Map<?, ?> pat) || !(pat.get("String") instanceof String from)) {
                    throw new LongspanException(src + ": only string patterns are supported in a Replace normalizer");
                }
                String to = String.valueOf(m.get("content"));
                yield s -> s.replace(from, to);
            }
            case "Sequence" -> {
                List<UnaryOperator<String>> steps = new ArrayList<>();
                if (m.get("normalizers") instanceof List<?> l) for (Object o : l) steps.add(normalizer(o, src));
                yield s -> {
                    for (UnaryOperator<String> f : steps) if (f != null) s = f.apply(s);
                    return s;
                };
            }
            default -> throw new LongspanException(src + ": normalizer type " + type + " is not supported (supported: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Sequence)");
        };
    }

    /** Compiles a Hugging Face (Oniguruma) regex for java.util.regex: \s, \d, \w become Unicode-aware as in Oniguruma. */
    static Pattern compileRegex(String re, String src) {
        try {
            return Pattern.compile(re, Pattern.UNICODE_CHARACTER_CLASS);
        } catch (java.util.regex.PatternSyntaxException e) {
            throw new LongspanException(src + ": pre-tokenizer regex cannot be compiled: " + e.getDescription());
        }
    }

    /** A regex split with Hugging Face's behaviours (Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous). */
    static PreTokenizer split(Pattern p, String behavior, boolean invert, String src) {
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
            default -> throw new LongspanException(src + ": Split behavior " + behavior + " is not supported");
        };
    }

    private static void preTokenizer(Object node, String src, List<PreTokenizer> out) {
        if (node == null) return;
        if (!(node instanceof Map<?, ?> m)) throw new LongspanException(src + ": pre_tokenizer is not an object");
        String type = String.valueOf(m.get("type"));
        switch (type) {
            case "Sequence" -> {
                if (m.get("pretokenizers") instanceof List<?> l) for (Object o : l) preTokenizer(o, src, out);
            }
            case "Split" -> {
                Pattern p;
                if (m.get("pattern") instanceof Map<?, ?> pat && pat.get("Regex") instanceof String re) p = compileRegex(re, src);
                else if (m.get("pattern") instanceof Map<?, ?> pat && pat.get("String") instanceof String s) p = Pattern.compile(Pattern.quote(s));
                else throw new LongspanException(src + ": Split pre-tokenizer without a Regex or String pattern");
                out.add(split(p, String.valueOf(m.get("behavior")), bool(m, "invert", false), src));
            }
            case "ByteLevel" -> {
                boolean prefix = bool(m, "add_prefix_space", false);
                if (prefix) out.add((piece, first, o) -> o.add(piece.startsWith(" ") ? piece : " " + piece));
                if (bool(m, "use_regex", true)) out.add(split(compileRegex(GPT2_PATTERN, src), "Isolated", false, src));
            }
            case "Digits" -> {
                boolean individual = bool(m, "individual_digits", false);
                out.add(split(Pattern.compile(individual ? "\\p{Nd}" : "\\p{Nd}+"), "Isolated", false, src));
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
            default -> throw new LongspanException(src + ": pre-tokenizer type " + type + " is not supported (supported: Sequence, Split, ByteLevel, Digits, Metaspace)");
        }
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
                addBos = c.get("add_bos_token") instanceof Boolean b && b && bos != null;
            } catch (IOException e) {
                throw new LongspanException(cfg + ": cannot read: " + e.getMessage(), e);
            }
        } else {
            // no config: a template post-processor that starts with a special token means BOS is added
            if (root.get("post_processor") instanceof Map<?, ?> pp && pp.get("single") instanceof List<?> single && !single.isEmpty()
                    && single.get(0) instanceof Map<?, ?> first && first.get("SpecialToken") instanceof Map<?, ?> st && st.get("id") instanceof String id) {
                bos = id;
                addBos = true;
            }
            for (String c : new String[]{"<s>", "<|begin_of_text|>", "<bos>"}) if (bos == null && tok.tokenId(c) >= 0) bos = c;
            for (String c : new String[]{"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"}) if (eos == null && tok.tokenId(c) >= 0) eos = c;
        }
        tok.setSpecials(bos == null ? -1 : tok.tokenId(bos), eos == null ? -1 : tok.tokenId(eos), pad == null ? -1 : tok.tokenId(pad), addBos);
    }

    // ---- small primitive collections ---------------------------------------------------------

    static final class IntList {
        int[] a = new int[16];
        int n;

        void add(int v) {
            if (n == a.length) a = Arrays.copyOf(a, n * 2);
            a[n++] = v;
        }

        void addAll(int[] v) {
            if (n + v.length > a.length) a = Arrays.copyOf(a, Math.max(a.length * 2, n + v.length));
            System.arraycopy(v, 0, a, n, v.length);
            n += v.length;
        }

        boolean contains(int v) {
            for (int i = 0; i < n; i++) if (a[i] == v) return true;
            return false;
        }

        int[] toArray() { return Arrays.copyOf(a, n); }
    }

    /** A min-heap of longs (rank << 32 | position). */
    static final class LongHeap {
        long[] h;
        int n;

        LongHeap(int cap) { h = new long[Math.max(4, cap)]; }

        boolean isEmpty() { return n == 0; }

        void push(long v) {
            if (n == h.length) h = Arrays.copyOf(h, n * 2);
            int i = n++;
            while (i > 0) {
                int p = (i - 1) >>> 1;
                if (h[p] <= v) break;
                h[i] = h[p];
                i = p;
            }
            h[i] = v;
        }

        long pop() {
            long top = h[0];
            long v = h[--n];
            int i = 0;
            while (true) {
                int c = 2 * i + 1;
                if (c >= n) break;
                if (c + 1 < n && h[c + 1] < h[c]) c++;
                if (h[c] >= v) break;
                h[i] = h[c];
                i = c;
            }
            h[i] = v;
            return top;
        }
    }

    /** Open-addressing long → int map (absent = -1). */
    static final class LongIntMap {
        long[] keys;
        int[] vals;
        boolean[] used;
        int mask, size;

        LongIntMap(int expected) {
            int cap = Integer.highestOneBit(Math.max(16, expected * 2 - 1)) << 1;
            keys = new long[cap];
            vals = new int[cap];
            used = new boolean[cap];
            mask = cap - 1;
        }

        private static int hash(long k) {
            long h = k * 0x9E3779B97F4A7C15L;
            return (int) (h ^ (h >>> 32));
        }

        int get(long k) {
            for (int i = hash(k) & mask; used[i]; i = (i + 1) & mask) if (keys[i] == k) return vals[i];
            return -1;
        }

        void put(long k, int v) {
            if ((size + 1) * 2 > keys.length) grow();
            int i = hash(k) & mask;
            while (used[i] && keys[i] != k) i = (i + 1) & mask;
            if (!used[i]) size++;
            used[i] = true;
            keys[i] = k;
            vals[i] = v;
        }

        private void grow() {
            long[] ok = keys;
            int[] ov = vals;
            boolean[] ou = used;
            keys = new long[ok.length * 2];
            vals = new int[ok.length * 2];
            used = new boolean[ok.length * 2];
            mask = keys.length - 1;
            size = 0;
            for (int i = 0; i < ok.length; i++) if (ou[i]) put(ok[i], ov[i]);
        }
    }
}

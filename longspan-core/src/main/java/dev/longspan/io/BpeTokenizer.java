package dev.longspan.io;

import dev.longspan.util.LongspanException;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.UnaryOperator;

/**
 * Byte-pair encoding, pure Java: byte-level BPE (GPT-2, Llama 3, Qwen) and SentencePiece-style
 * BPE with byte fallback, built from the parts of a Hugging Face {@code tokenizer.json} that
 * {@link TokenizerJson} reads ({@link #fromTokenizerJson}). GGUF {@code gpt2} vocabularies are tokenized
 * as llama.cpp does by {@link GgufBpeTokenizer}, which shares the GPT-2 byte map below.
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
    private static final int[] CHAR_TO_BYTE = new int[512];

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

    // ---- state -------------------------------------------------------------------------------

    private final String name;
    private final Mode mode;
    private final String[] vocab;             // id → token string as in the vocabulary
    private final Map<String, Integer> ids;   // token string → id
    private final byte[][] bytes;             // id → decoded bytes
    private final IntPairMap mergeRank;       // (left id, right id) → rank
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
            if (t.normalized() && normalizer != null) {
                // Hugging Face keeps a normalized added token as its normalized text: matched in normalized
                // text ("ＡＢＣ" → "abc" matches "ABC" under NFKC + Lowercase) and decoded as that text
                String content = normalizer.apply(t.content());
                t = new AddedTokens.Token(content, t.id(), t.special(), t.lstrip(), t.rstrip(), t.singleWord(), true);
                if (this.vocab[t.id()] == null || t.id() >= vocab.length) this.vocab[t.id()] = content;
                norm.add(t);
            } else {
                if (this.vocab[t.id()] == null) this.vocab[t.id()] = t.content();
                raw.add(t);
            }
            ids.putIfAbsent(t.content(), t.id());
            special[t.id()] = t.special();
        }
        for (AddedTokens.Token t : added) ids.putIfAbsent(t.content(), t.id());   // the file's own text finds it too
        this.rawAdded = new AddedTokens(raw);
        this.normAdded = new AddedTokens(norm);
        this.unkId = unkToken == null ? -1 : ids.getOrDefault(unkToken, -1);

        this.byteIds = new int[256];
        for (int b = 0; b < 256; b++) {
            String key = mode == Mode.BYTE_LEVEL ? String.valueOf(BYTE_TO_CHAR[b]) : String.format("<0x%02X>", b);
            byteIds[b] = ids.getOrDefault(key, -1);
        }

        this.merges = List.copyOf(merges);
        this.mergeRank = new IntPairMap(merges.size() * 2);
        this.mergeResult = new int[merges.size()];
        for (int r = 0; r < merges.size(); r++) {
            String[] m = merges.get(r);
            Integer a = ids.get(m[0]), b = ids.get(m[1]), c = ids.get(m[0] + m[1]);
            if (a == null || b == null || c == null) {
                throw new LongspanException(source + ": merge " + (r + 1) + " '" + m[0] + " " + m[1] + "' uses a token that is not in the vocabulary");
            }
            if (mergeRank.putIfAbsent(a, b, r)) mergeResult[r] = c;
        }

        this.bytes = new byte[size][];
        this.byteToken = new boolean[size];
        for (int i = 0; i < size; i++) {
            int b = fallbackByte(this.vocab[i]);
            byteToken[i] = b >= 0;
            this.bytes[i] = b >= 0 ? new byte[]{(byte) b} : decodeToken(this.vocab[i]);
        }
    }

    private final boolean[] byteToken;   // a <0xXX> byte-fallback token

    /**
     * For a tokenizer.json whose decoder is Metaspace (not Fuse and Strip): Hugging Face's Metaspace
     * decoder drops every ▁ of the first token (not only a leading space: "▁she▁" gives "she") and
     * turns the others' into spaces.
     */
    void firstTokenDropsReplacement(String replacement) {
        this.metaspaceReplacement = replacement;
    }

    private String metaspaceReplacement;   // non-null: the Metaspace decoder's first-token rule

    // the first token's bytes under the Metaspace decoder: its text without the replacement character
    private byte[] firstTokenBytes(int id) {
        if (metaspaceReplacement == null || special[id] || byteToken[id] || vocab[id] == null) return tokenBytes(id);
        return decodeToken(vocab[id].replace(metaspaceReplacement, ""));
    }

    private boolean noDecoder;   // a tokenizer.json without a decoder: tokens joined by spaces

    /** For a tokenizer.json with no decoder: Hugging Face then decodes the token strings joined by single spaces. */
    void decodeAsSpaceJoinedTokens() {
        this.noDecoder = true;
    }

    /**
     * For a tokenizer.json whose model falls back to bytes but whose decoder has no ByteFallback
     * step: Hugging Face then decodes a {@code <0xXX>} token as its own text, and so does this.
     */
    void decodeByteTokensAsText() {
        for (int i = 0; i < byteToken.length; i++) {
            if (!byteToken[i]) continue;
            byteToken[i] = false;
            bytes[i] = decodeToken(vocab[i]);
        }
    }

    // the byte of a <0xXX> byte-fallback token, or -1 (an ordinary token, one that only looks similar included)
    private int fallbackByte(String t) {
        if (mode == Mode.BYTE_LEVEL || !byteFallback || t == null || t.length() != 6 || !t.startsWith("<0x") || !t.endsWith(">")) return -1;
        try {
            return Integer.parseInt(t.substring(3, 5), 16) & 0xFF;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private byte[] decodeToken(String t) {
        if (t == null) return new byte[0];
        if (mode == Mode.BYTE_LEVEL) return fromByteLevel(t);
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

    private boolean fuseUnk;   // model.fuse_unk: a run of unknown characters is one unknown token

    /** Hugging Face's fuse_unk: consecutive characters of a pre-token with no token become one unknown token. */
    void fuseUnknown() {
        this.fuseUnk = true;
    }

    // initial symbols of a pre-token: its bytes (byte-level) or its characters (with byte fallback)
    private int[] symbols(String piece) {
        IntList s = new IntList();
        if (mode == Mode.BYTE_LEVEL) {
            boolean prevUnk = false;
            for (byte b : piece.getBytes(StandardCharsets.UTF_8)) {
                int id = byteIds[b & 0xff];
                if (id >= 0) s.add(id);
                else if (unkId >= 0 && !(fuseUnk && prevUnk)) s.add(unkId);
                prevUnk = id < 0;
            }
        } else {
            boolean prevUnk = false;
            for (int k = 0; k < piece.length(); ) {
                int cp = piece.codePointAt(k);
                String ch = piece.substring(k, k + Character.charCount(cp));
                k += ch.length();
                Integer id = ids.get(ch);
                if (id != null) { s.add(id); prevUnk = false; continue; }
                boolean done = false;
                if (byteFallback) {
                    byte[] bs = ch.getBytes(StandardCharsets.UTF_8);
                    done = true;
                    for (byte b : bs) if (byteIds[b & 0xff] < 0) done = false;
                    if (done) for (byte b : bs) s.add(byteIds[b & 0xff]);
                }
                if (!done && unkId >= 0 && !(fuseUnk && prevUnk)) s.add(unkId);
                prevUnk = !done;
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
            int r = mergeRank.get(id[i], id[i + 1]);
            if (r >= 0) heap.push(((long) r << 32) | i);
        }
        while (!heap.isEmpty()) {
            long e = heap.pop();
            int r = (int) (e >>> 32), i = (int) e;
            if (id[i] < 0) continue;              // merged away
            int j = next[i];
            if (j < 0) continue;
            if (mergeRank.get(id[i], id[j]) != r) continue; // stale entry
            id[i] = mergeResult[r];
            id[j] = -1;
            next[i] = next[j];
            if (next[j] >= 0) prev[next[j]] = i;
            if (prev[i] >= 0) {
                int r2 = mergeRank.get(id[prev[i]], id[i]);
                if (r2 >= 0) heap.push(((long) r2 << 32) | prev[i]);
            }
            if (next[i] >= 0) {
                int r3 = mergeRank.get(id[i], id[next[i]]);
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

    /** A token's bytes from its GPT-2 characters; text that is not byte-level comes out as its UTF-8 (like HF's ByteLevel decoder). */
    static byte[] fromByteLevel(String t) {
        byte[] out = new byte[t.length()];
        for (int k = 0; k < t.length(); k++) {
            char c = t.charAt(k);
            int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
            if (b < 0) return t.getBytes(StandardCharsets.UTF_8);
            out[k] = (byte) b;
        }
        return out;
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
        if (noDecoder) {
            StringBuilder b = new StringBuilder();
            for (int i = from; i < to; i++) {
                tokenBytes(ids[i]);   // checks the id
                b.append(i > from ? " " : "").append(vocab[ids[i]] == null ? "" : vocab[ids[i]]);
            }
            return b.toString();
        }
        if (mode != Mode.BYTE_LEVEL && byteFallback) return decodeWithByteFallback(ids, from, to);
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int i = from; i < to; i++) {
            byte[] b = i == from ? firstTokenBytes(ids[i]) : tokenBytes(ids[i]);
            if (stripLeadingSpace && out.size() == 0 && i == from && b.length > 0 && b[0] == ' ') out.write(b, 1, b.length - 1);
            else out.writeBytes(b);
        }
        return Utf8.decode(out.toByteArray());
    }

    /**
     * Hugging Face's ByteFallback decoder: a run of {@code <0xXX>} tokens is decoded together, and a run that is
     * not valid UTF-8 gives one U+FFFD per token — not one per ill-formed part, as a byte-level decoder does —
     * then the pieces are joined and the Strip decoder drops one leading space.
     */
    private String decodeWithByteFallback(int[] ids, int from, int to) {
        StringBuilder out = new StringBuilder();
        java.io.ByteArrayOutputStream run = new java.io.ByteArrayOutputStream();
        for (int i = from; i <= to; i++) {
            byte[] b = i == to ? null : i == from ? firstTokenBytes(ids[i]) : tokenBytes(ids[i]);
            if (b != null && byteToken[ids[i]]) {
                run.writeBytes(b);
                continue;
            }
            if (run.size() > 0) {
                try {
                    out.append(StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(run.toByteArray())));
                } catch (java.nio.charset.CharacterCodingException e) {
                    out.append("\uFFFD".repeat(run.size()));
                }
                run.reset();
            }
            if (b != null) out.append(new String(b, StandardCharsets.UTF_8));
        }
        if (stripLeadingSpace && !out.isEmpty() && out.charAt(0) == ' ') out.deleteCharAt(0);
        return out.toString();
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

    private SpaceCleanup cleanup = SpaceCleanup.NONE;

    /** tokenizer_config.json's clean_up_tokenization_spaces: true → Hugging Face's clean-up in {@link #detokenize}. */
    void setSpaceCleanup(SpaceCleanup cleanup) { this.cleanup = cleanup; }

    @Override
    public SpaceCleanup spaceCleanup() { return cleanup; }

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

    /**
     * Loads a Hugging Face tokenizer.json with a BPE model ({@link TokenizerJson}). Special ids come from a
     * tokenizer_config.json beside it when present (bos_token, eos_token, pad_token, add_bos_token).
     */
    public static BpeTokenizer fromTokenizerJson(Path path) {
        return TokenizerJson.load(path);
    }
}

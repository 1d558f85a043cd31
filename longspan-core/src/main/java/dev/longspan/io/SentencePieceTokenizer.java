package dev.longspan.io;

import dev.longspan.util.LongspanException;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * SentencePiece-style BPE as llama.cpp runs it for GGUF vocabularies with
 * {@code tokenizer.ggml.model = "llama"}: spaces become ▁ (U+2581), a ▁ is prefixed at the start
 * and after every special token (add_space_prefix), the text is split into characters, and the
 * adjacent pair whose concatenation is the vocabulary token with the highest score is merged
 * repeatedly (leftmost first on ties). A final symbol not in the vocabulary falls back to its UTF-8
 * bytes as {@code <0xXX>} tokens (or UNK when those are missing).
 *
 * <p>Token types follow GGUF: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
 * Control, unknown and user-defined tokens are matched in the text before splitting, as llama.cpp does
 * ({@link LlamaSpecialTokens}).
 */
public final class SentencePieceTokenizer implements Tokenizer {
    static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;

    private final String name;
    private final String[] tokens;
    private final float[] scores;
    private final int[] types;
    private final Map<String, Integer> ids;
    private final int[] byteIds = new int[256];
    private final byte[][] bytes;
    private final LlamaSpecialTokens specials;
    private final boolean addSpacePrefix;
    private final int bos, eos, unk, pad;
    private final boolean addBos;

    public SentencePieceTokenizer(String name, String[] tokens, float[] scores, int[] types, int bos, int eos, int unk, int pad,
                                  boolean addBos, boolean addSpacePrefix) {
        this(name, tokens, scores, types, bos, eos, unk, pad, addBos, addSpacePrefix, null, null);
    }

    /** lstrip/rstrip: per id, whether a special token swallows the ASCII whitespace before/after it (may be null). */
    SentencePieceTokenizer(String name, String[] tokens, float[] scores, int[] types, int bos, int eos, int unk, int pad,
                           boolean addBos, boolean addSpacePrefix, boolean[] lstrip, boolean[] rstrip) {
        int n = tokens.length;
        if (scores.length != n || types.length != n) {
            throw new LongspanException(name + ": " + n + " tokens but " + scores.length + " scores and " + types.length + " token types");
        }
        this.name = name;
        this.tokens = tokens;
        this.scores = scores;
        this.types = types;
        this.bos = bos;
        this.eos = eos;
        this.unk = unk;
        this.pad = pad;
        this.addBos = addBos;
        this.addSpacePrefix = addSpacePrefix;
        this.ids = new HashMap<>(n * 2);
        for (int i = 0; i < n; i++) ids.putIfAbsent(tokens[i], i);
        java.util.Arrays.fill(byteIds, -1);
        for (int b = 0; b < 256; b++) byteIds[b] = ids.getOrDefault(String.format("<0x%02X>", b), -1);
        this.specials = new LlamaSpecialTokens(tokens, types, lstrip, rstrip);
        this.bytes = new byte[n][];
        for (int i = 0; i < n; i++) {
            String t = tokens[i];
            if (types[i] == BYTE) {
                bytes[i] = new byte[]{llamaCppByte(name, i, t)};
            } else {
                bytes[i] = t.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
            }
        }
    }

    /**
     * The byte a BYTE-typed token stands for, as llama.cpp's token_to_byte reads it: {@code strtol} of the two
     * characters after "<0x" in base 16 (so a damaged name still gives a byte: "<0x?F>" is 0), the load refused
     * when the text is shorter than three characters (llama.cpp's substr throws there and it refuses the file).
     */
    static byte llamaCppByte(String vocab, int id, String t) {
        if (t.length() < 3) {
            throw new dev.longspan.util.LongspanException(vocab + ": byte token " + id + " is \"" + t + "\", not <0xHH> (llama.cpp refuses such a vocabulary)");
        }
        String s = t.substring(3, Math.min(5, t.length()));
        int i = 0, sign = 1;
        while (i < s.length() && (s.charAt(i) == ' ' || (s.charAt(i) >= '\t' && s.charAt(i) <= '\r'))) i++;
        if (i < s.length() && (s.charAt(i) == '+' || s.charAt(i) == '-')) sign = s.charAt(i++) == '-' ? -1 : 1;
        if (i + 1 < s.length() && s.charAt(i) == '0' && (s.charAt(i + 1) == 'x' || s.charAt(i + 1) == 'X')
                && i + 2 < s.length() && HEX.indexOf(s.charAt(i + 2)) >= 0) i += 2;
        long v = 0;
        for (; i < s.length() && HEX.indexOf(s.charAt(i)) >= 0; i++) v = v * 16 + Character.digit(s.charAt(i), 16);
        return (byte) (sign * v);
    }

    private static final String HEX = "0123456789abcdefABCDEF";

    @Override
    public int[] encode(String text) {
        return encode(text, true);
    }

    @Override
    public int[] encode(String text, boolean parseSpecial) {
        IntList out = new IntList();
        boolean prevSpecial = true; // a space prefix at the start and after each special token
        for (AddedTokens.Piece p : specials.split(text, parseSpecial)) {
            if (p.isToken()) {
                out.add(p.id());
                prevSpecial = true;
            } else {
                String s = (addSpacePrefix && prevSpecial ? " " : "") + p.text();
                encodeText(s.replace(' ', '\u2581'), out);
                prevSpecial = false;
            }
        }
        return out.toArray();
    }

    private record Bigram(int left, int right, float score, int size) {}

    private void encodeText(String s, IntList out) {
        // symbols: one per character (code point), as [start, length) in s, linked
        int n = s.codePointCount(0, s.length());
        int[] start = new int[n], len = new int[n], prev = new int[n], next = new int[n];
        for (int i = 0, k = 0; i < n; i++) {
            int c = Character.charCount(s.codePointAt(k));
            start[i] = k;
            len[i] = c;
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
            k += c;
        }
        // highest score first; leftmost first on ties
        PriorityQueue<Bigram> queue = new PriorityQueue<>((a, b) -> a.score != b.score ? Float.compare(b.score, a.score) : Integer.compare(a.left, b.left));
        for (int i = 1; i < n; i++) tryBigram(s, start, len, i - 1, i, queue);
        while (!queue.isEmpty()) {
            Bigram bg = queue.poll();
            int l = bg.left(), r = bg.right();
            if (len[l] == 0 || len[r] == 0 || len[l] + len[r] != bg.size()) continue; // outdated
            len[l] += len[r];
            len[r] = 0;
            next[l] = next[r];
            if (next[r] >= 0) prev[next[r]] = l;
            if (prev[l] >= 0) tryBigram(s, start, len, prev[l], l, queue);
            if (next[l] >= 0) tryBigram(s, start, len, l, next[l], queue);
        }
        for (int i = 0; i >= 0 && n > 0; i = next[i]) {
            String piece = s.substring(start[i], start[i] + len[i]);
            Integer id = ids.get(piece);
            if (id != null) {
                out.add(id);
                continue;
            }
            for (byte b : piece.getBytes(StandardCharsets.UTF_8)) {
                int bid = byteIds[b & 0xff];
                out.add(bid >= 0 ? bid : unk);
            }
        }
    }

    private void tryBigram(String s, int[] start, int[] len, int l, int r, PriorityQueue<Bigram> q) {
        if (l < 0 || r < 0) return;
        String text = s.substring(start[l], start[r] + len[r]);
        Integer id = ids.get(text);
        if (id == null) return;
        q.add(new Bigram(l, r, scores[id], text.length()));
    }

    @Override
    public byte[] tokenBytes(int id) {
        if (id < 0 || id >= bytes.length) {
            throw new LongspanException("token id " + id + " is outside the vocabulary (0.." + (bytes.length - 1) + ") of " + name);
        }
        return bytes[id];
    }

    /**
     * Decodes, turning ▁ back into spaces (also when it came as byte tokens) and dropping the space that
     * encoding prefixed at the start and after each special token.
     */
    @Override
    public String decode(int[] ids, int from, int to) {
        return decode(ids, from, to, true);
    }

    /**
     * llama.cpp's {@code llama_detokenize} (and Hugging Face's fast decoder): only the range's first
     * token loses its prefixed space; after a special token the space stays ("{@code <s> Once}").
     */
    @Override
    public String detokenize(int[] ids) {
        return decode(ids, 0, ids.length, false);
    }

    // afterSpecials: strip the prefixed space of every run that follows a special token too, so that the
    // text encodes back to the same ids (the encoder prefixes a space there) — what generation needs
    private String decode(int[] ids, int from, int to, boolean afterSpecials) {
        StringBuilder out = new StringBuilder();
        java.io.ByteArrayOutputStream run = new java.io.ByteArrayOutputStream();
        // every run of ordinary tokens starts the range or follows a special token, so it had a ▁ prefixed
        for (int i = from; i <= to; i++) {
            int t = i < to ? types[checked(ids[i])] : CONTROL;
            // llama.cpp writes UNK as its text too (`<unk>`), which encodes back to UNK (SentencePiece's " ⁇ " would not)
            boolean sp = t == CONTROL || t == USER_DEFINED || t == UNKNOWN;
            if (sp || i == to) {
                if (run.size() > 0) {
                    String text = Utf8.decode(run.toByteArray()).replace('\u2581', ' ');
                    if (addSpacePrefix && text.startsWith(" ") && (afterSpecials || out.isEmpty())) text = text.substring(1);
                    out.append(text);
                    run.reset();
                }
                if (i < to) out.append(tokens[ids[i]]);
            } else {
                run.writeBytes(bytes[ids[i]]);
            }
        }
        return out.toString();
    }

    private int checked(int id) {
        tokenBytes(id);
        return id;
    }

    @Override public int vocabSize() { return tokens.length; }
    @Override public int bosId() { return bos; }
    @Override public int eosId() { return eos; }

    private int[] stopIds;

    /** The ids that end generation (a GGUF's end-of-generation tokens); EOS alone when not set. */
    void setStopIds(int[] ids) { this.stopIds = ids.clone(); }

    @Override public int[] stopIds() { return stopIds != null ? stopIds.clone() : Tokenizer.super.stopIds(); }
    @Override public int padId() { return pad; }
    @Override public boolean addBos() { return addBos; }

    @Override
    public int tokenId(String token) {
        Integer id = ids.get(token);
        return id == null ? -1 : id;
    }

    public String token(int id) { return tokens[id]; }

    @Override
    public String describe() {
        return name + " (SentencePiece-style BPE, " + tokens.length + " tokens)";
    }
}

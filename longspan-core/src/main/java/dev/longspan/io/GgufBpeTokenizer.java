package dev.longspan.io;

import dev.longspan.util.LongspanException;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A GGUF {@code gpt2} (BPE) vocabulary tokenized exactly as llama.cpp does: special tokens split off
 * ({@link LlamaSpecialTokens}), words from the {@code tokenizer.ggml.pre} regexes
 * ({@link LlamaPreTokenizer}), each word mapped byte by byte to GPT-2's printable characters, then merged
 * pairwise by merge rank (lowest first, leftmost on ties) over the characters; a word that is itself a
 * token is taken whole when the pre-tokenizer ignores merges (Llama 3, Tekken); a final symbol that is
 * not a token falls back to its one-byte tokens (skipping bytes the vocabulary lacks).
 *
 * <p>SentencePiece-style pre-tokenizers (Gemma 4, Sarvam, whitespace) merge the UTF-8 text itself and fall
 * back to {@code <0xXX>} tokens; the {@link Session} covers llama.cpp's two tokenizer models that wrap the
 * BPE: {@code whitespace} and {@code hybriddna}.
 */
public final class GgufBpeTokenizer implements Tokenizer {
    /** How a text fragment reaches the BPE: as is, or first cut the way llama.cpp's wrapping tokenizer models cut it. */
    enum Session {
        PLAIN,
        /** {@code whitespace}: the runs between whitespace, each tokenized on its own (whitespace dropped). */
        WHITESPACE,
        /** {@code whitespace} with the normalizer's lowercasing. */
        WHITESPACE_LOWERCASE,
        /**
         * {@code hybriddna}: text between {@code <dna>} and {@code </dna>} becomes 6-mers of its
         * upper-cased bases (the last padded with A), each the token of the k-mer plus U+E000, else
         * {@code <oov>}; the rest is plain BPE. Without those three tokens in the vocabulary: plain BPE.
         */
        HYBRID_DNA
    }

    /** The suffix that keeps a DNA k-mer's token apart from the same letters as ordinary text. */
    static final String KMER_MARK = "\uE000";
    private static final int KMER = 6;

    private final String name;
    private final String[] tokens;
    private final int[] types;
    private final Map<String, Integer> ids;
    private final Map<String, Integer> ranks;     // key(left, right) → merge rank
    private final byte[][] bytes;
    private final LlamaPreTokenizer pre;
    private final LlamaSpecialTokens specials;
    private final boolean ignoreMerges, byteEncode, escapeSpaces, gemma4;
    private final Session session;
    private final int bos, eos, pad;
    private final boolean addBos;
    private final int[] stopIds;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();
    private final SpaceCleanup cleanup;

    GgufBpeTokenizer(String name, String[] tokens, int[] types, Map<String, Integer> ids, List<String[]> merges,
                     LlamaPreTokenizer.Spec spec, Session session, LlamaSpecialTokens specials, int bos, int eos, int pad, boolean addBos,
                     int[] stopIds, SpaceCleanup cleanup, String src) {
        this.cleanup = cleanup;
        this.name = name;
        this.tokens = tokens;
        this.types = types;
        this.ids = ids;
        this.ranks = new HashMap<>(merges.size() * 2);
        for (int r = 0; r < merges.size(); r++) ranks.putIfAbsent(key(merges.get(r)[0], merges.get(r)[1]), r);
        this.pre = new LlamaPreTokenizer(spec.regexes(), src);
        this.ignoreMerges = spec.ignoreMerges();
        this.byteEncode = spec.byteEncode();
        this.escapeSpaces = spec.escapeSpaces();
        this.gemma4 = spec.gemma4();
        this.session = session;
        this.specials = specials;
        this.bos = bos;
        this.eos = eos;
        this.pad = pad;
        this.addBos = addBos;
        this.stopIds = stopIds;
        this.bytes = new byte[tokens.length][];
        for (int i = 0; i < tokens.length; i++) bytes[i] = decodeToken(tokens[i], types[i], i);
        if (session == Session.HYBRID_DNA && ids.containsKey("<oov>")) {
            // the k-mers follow <oov>: they print as their bases, without the mark
            for (int i = ids.get("<oov>") + 1; i < tokens.length; i++) {
                if (tokens[i].length() > 1 && tokens[i].endsWith(KMER_MARK)) {
                    bytes[i] = tokens[i].substring(0, tokens[i].length() - 1).getBytes(StandardCharsets.UTF_8);
                }
            }
        }
    }

    // unambiguous even when a token contains spaces
    private static String key(String left, String right) {
        return left.length() + ":" + left + right;
    }

    // llama.cpp's token_to_piece: normal tokens are GPT-2 byte characters (or text with U+2581 for spaces);
    // byte tokens <0xXX> their byte; user-defined, control and unknown tokens print as their text. A vocabulary
    // merged as UTF-8 without the U+2581 escape (whitespace) prints its tokens as text: llama.cpp would read them
    // as GPT-2 byte characters and garble every character outside that map.
    private byte[] decodeToken(String t, int type, int id) {
        if (type == LlamaSpecialTokens.BYTE) return new byte[]{SentencePieceTokenizer.llamaCppByte(name, id, t)};
        if (type != LlamaSpecialTokens.NORMAL) return t.getBytes(StandardCharsets.UTF_8);
        if (escapeSpaces) return t.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
        return byteEncode ? BpeTokenizer.fromByteLevel(t) : t.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public int[] encode(String text) {
        return encode(text, true);
    }

    @Override
    public int[] encode(String text, boolean parseSpecial) {
        IntList out = new IntList();
        for (AddedTokens.Piece p : specials.split(text, parseSpecial)) {
            if (p.isToken()) {
                out.add(p.id());
                continue;
            }
            String fragment = escapeSpaces ? p.text().replace(' ', '\u2581') : p.text();
            switch (session) {
                case PLAIN -> encodeWords(fragment, out);
                case WHITESPACE, WHITESPACE_LOWERCASE -> encodeRuns(fragment, session == Session.WHITESPACE_LOWERCASE, out);
                case HYBRID_DNA -> encodeDna(fragment, out);
            }
        }
        return out.toArray();
    }

    private void encodeWords(String text, IntList out) {
        for (String word : pre.split(text)) {
            if (word.isEmpty()) continue;
            int[] r = cache.get(word);
            if (r == null) {
                r = word(word);
                if (cache.size() > 200_000) cache.clear();
                cache.put(word, r);
            }
            out.addAll(r);
        }
    }

    private int[] word(String word) {
        if (gemma4 && word.chars().allMatch(c -> c == '\n')) {
            Integer whole = ids.get(word);
            if (whole != null) return new int[]{whole};
        }
        return bpe(byteEncode ? BpeTokenizer.toByteLevel(word) : word);
    }

    private void encodeRuns(String text, boolean lowercase, IntList out) {
        StringBuilder run = new StringBuilder();
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            i += Character.charCount(cp);
            if (LlamaUnicode.isWhitespace(cp)) {
                if (!run.isEmpty()) encodeWords(run.toString(), out);
                run.setLength(0);
            } else {
                run.appendCodePoint(lowercase ? LlamaUnicode.toLower(cp) : cp);
            }
        }
        if (!run.isEmpty()) encodeWords(run.toString(), out);
    }

    private void encodeDna(String text, IntList out) {
        Integer open = ids.get("<dna>"), close = ids.get("</dna>"), oov = ids.get("<oov>");
        if (open == null || close == null || oov == null) {
            encodeWords(text, out);
            return;
        }
        int pos = 0;
        while (pos < text.length()) {
            int start = text.indexOf("<dna>", pos);
            if (start < 0) {
                encodeWords(text.substring(pos), out);
                return;
            }
            if (start > pos) encodeWords(text.substring(pos, start), out);
            out.add(open);
            int from = start + "<dna>".length(), end = text.indexOf("</dna>", from);
            kmers(text.substring(from, end < 0 ? text.length() : end), oov, out);
            if (end < 0) return;
            out.add(close);
            pos = end + "</dna>".length();
        }
    }

    // k-mers of the sequence's UTF-8 bytes (a-z upper-cased), as llama.cpp cuts them
    private void kmers(String sequence, int oov, IntList out) {
        byte[] seq = sequence.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < seq.length; i++) if (seq[i] >= 'a' && seq[i] <= 'z') seq[i] -= 32;
        for (int i = 0; i < seq.length; i += KMER) {
            byte[] k = java.util.Arrays.copyOfRange(seq, i, i + KMER); // zero-padded past the end
            for (int j = seq.length - i; j < KMER; j++) k[j] = 'A';
            Integer id = ids.get(new String(k, StandardCharsets.UTF_8) + KMER_MARK);
            out.add(id != null ? id : oov);
        }
    }

    private record Bigram(int left, int right, String text, int rank) {}

    private int[] bpe(String word) {
        IntList out = new IntList();
        if (ignoreMerges) {
            Integer whole = ids.get(word);
            if (whole != null) {
                out.add(whole);
                return out.toArray();
            }
        }
        // symbols: one per character of the byte-level word, as [start, length) linked in a list
        int n = word.codePointCount(0, word.length());
        int[] start = new int[n], len = new int[n], prev = new int[n], next = new int[n];
        for (int i = 0, k = 0; i < n; i++) {
            int c = Character.charCount(word.codePointAt(k));
            start[i] = k;
            len[i] = c;
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
            k += c;
        }
        PriorityQueue<Bigram> queue = new PriorityQueue<>((a, b) -> a.rank != b.rank ? Integer.compare(a.rank, b.rank) : Integer.compare(a.left, b.left));
        for (int i = 1; i < n; i++) addBigram(word, start, len, i - 1, i, queue);
        while (!queue.isEmpty()) {
            Bigram bg = queue.poll();
            int l = bg.left(), r = bg.right();
            if (len[l] == 0 || len[r] == 0) continue;
            String now = word.substring(start[l], start[l] + len[l]) + word.substring(start[r], start[r] + len[r]);
            if (!now.equals(bg.text())) continue; // outdated
            len[l] += len[r];
            len[r] = 0;
            next[l] = next[r];
            if (next[r] >= 0) prev[next[r]] = l;
            if (prev[l] >= 0) addBigram(word, start, len, prev[l], l, queue);
            if (next[l] >= 0) addBigram(word, start, len, l, next[l], queue);
        }
        for (int i = 0; i >= 0 && n > 0; i = next[i]) {
            String sym = word.substring(start[i], start[i] + len[i]);
            Integer id = ids.get(sym);
            if (id != null) {
                out.add(id);
                continue;
            }
            if (byteEncode) {
                for (int k = 0; k < sym.length(); k++) {
                    Integer b = ids.get(String.valueOf(sym.charAt(k)));
                    if (b != null) out.add(b);
                }
            } else {
                for (byte x : sym.getBytes(StandardCharsets.UTF_8)) {
                    Integer b = ids.get(String.format("<0x%02X>", x & 0xff));
                    if (b != null) out.add(b);
                }
            }
        }
        return out.toArray();
    }

    private void addBigram(String word, int[] start, int[] len, int l, int r, PriorityQueue<Bigram> q) {
        String left = word.substring(start[l], start[l] + len[l]), right = word.substring(start[r], start[r] + len[r]);
        Integer rank = ranks.get(key(left, right));
        if (rank != null) q.add(new Bigram(l, r, left + right, rank));
    }

    @Override
    public byte[] tokenBytes(int id) {
        if (id < 0 || id >= bytes.length) {
            throw new LongspanException("token id " + id + " is outside the vocabulary (0.." + (bytes.length - 1) + ") of " + name);
        }
        return bytes[id];
    }

    @Override public int vocabSize() { return tokens.length; }
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
    public String token(int id) { return tokens[id]; }

    @Override
    public SpaceCleanup spaceCleanup() { return cleanup; }

    @Override
    public String describe() {
        return name + " (byte-level BPE as llama.cpp, " + tokens.length + " tokens, " + ranks.size() + " merges)";
    }
}

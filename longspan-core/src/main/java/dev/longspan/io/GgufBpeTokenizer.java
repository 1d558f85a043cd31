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
 */
public final class GgufBpeTokenizer implements Tokenizer {
    private final String name;
    private final String[] tokens;
    private final int[] types;
    private final Map<String, Integer> ids;
    private final Map<String, Integer> ranks;     // key(left, right) → merge rank
    private final byte[][] bytes;
    private final LlamaPreTokenizer pre;
    private final LlamaSpecialTokens specials;
    private final boolean ignoreMerges;
    private final int bos, eos, pad;
    private final boolean addBos;
    private final int[] stopIds;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    GgufBpeTokenizer(String name, String[] tokens, int[] types, Map<String, Integer> ids, List<String[]> merges,
                     LlamaPreTokenizer.Spec spec, LlamaSpecialTokens specials, int bos, int eos, int pad, boolean addBos,
                     int[] stopIds, String src) {
        this.name = name;
        this.tokens = tokens;
        this.types = types;
        this.ids = ids;
        this.ranks = new HashMap<>(merges.size() * 2);
        for (int r = 0; r < merges.size(); r++) ranks.putIfAbsent(key(merges.get(r)[0], merges.get(r)[1]), r);
        this.pre = new LlamaPreTokenizer(spec.regexes(), src);
        this.ignoreMerges = spec.ignoreMerges();
        this.specials = specials;
        this.bos = bos;
        this.eos = eos;
        this.pad = pad;
        this.addBos = addBos;
        this.stopIds = stopIds;
        this.bytes = new byte[tokens.length][];
        for (int i = 0; i < tokens.length; i++) bytes[i] = decodeToken(tokens[i], types[i]);
    }

    // unambiguous even when a token contains spaces
    private static String key(String left, String right) {
        return left.length() + ":" + left + right;
    }

    // llama.cpp's token_to_piece: normal tokens are GPT-2 byte characters; user-defined, control and unknown
    // tokens print as their text
    private static byte[] decodeToken(String t, int type) {
        return type == LlamaSpecialTokens.NORMAL ? BpeTokenizer.fromByteLevel(t) : t.getBytes(StandardCharsets.UTF_8);
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
            for (String word : pre.split(p.text())) {
                if (word.isEmpty()) continue;
                int[] r = cache.get(word);
                if (r == null) {
                    r = bpe(BpeTokenizer.toByteLevel(word));
                    if (cache.size() > 200_000) cache.clear();
                    cache.put(word, r);
                }
                out.addAll(r);
            }
        }
        return out.toArray();
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
            for (int k = 0; k < sym.length(); k++) {
                Integer b = ids.get(String.valueOf(sym.charAt(k)));
                if (b != null) out.add(b);
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
    public String describe() {
        return name + " (byte-level BPE as llama.cpp, " + tokens.length + " tokens, " + ranks.size() + " merges)";
    }
}

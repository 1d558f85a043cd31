package dev.longspan.io;

import dev.longspan.util.LongspanException;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * BERT WordPiece as llama.cpp runs it for GGUF vocabularies with {@code tokenizer.ggml.model = "bert"}:
 * the text is cut into words at whitespace, with every punctuation character, ASCII symbol and CJK
 * ideograph a word of its own; control characters are dropped; with lowercasing each code point is
 * replaced by the first code point of its NFD form (so accents go) and lowercased. Each word, prefixed
 * with ▁ (GGUF's spelling of a word start, where Hugging Face marks continuations with ##), is covered
 * greedily by the longest vocabulary tokens; a word that cannot be covered becomes UNK.
 */
public final class WordPieceTokenizer implements Tokenizer {
    private final String name;
    private final String[] tokens;
    private final Map<String, Integer> ids;
    private final LlamaSpecialTokens specials;
    private final int maxTokenChars;
    private final boolean lowercase, stripAccents;
    private final int bos, eos, unk, sep, pad;
    private final boolean addBos;
    private final byte[][] bytes;

    WordPieceTokenizer(String name, String[] tokens, Map<String, Integer> ids, LlamaSpecialTokens specials,
                       boolean lowercase, boolean stripAccents, int bos, int eos, int unk, int sep, int pad, boolean addBos) {
        this.name = name;
        this.tokens = tokens;
        this.ids = ids;
        this.specials = specials;
        this.lowercase = lowercase;
        this.stripAccents = stripAccents;
        this.bos = bos;
        this.eos = eos;
        this.unk = unk;
        this.sep = sep;
        this.pad = pad;
        this.addBos = addBos;
        int max = 0;
        for (String t : tokens) max = Math.max(max, t.length());
        this.maxTokenChars = max;
        this.bytes = new byte[tokens.length][];
        // a word-start token prints with its space; a continuation joins the previous piece
        for (int i = 0; i < tokens.length; i++) bytes[i] = tokens[i].replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public int[] encode(String text) {
        return encode(text, true);
    }

    @Override
    public int[] encode(String text, boolean parseSpecial) {
        IntList out = new IntList();
        for (AddedTokens.Piece p : specials.split(text, parseSpecial)) {
            if (p.isToken()) out.add(p.id());
            else for (String w : words(p.text())) encodeWord(w, out);
        }
        return out.toArray();
    }

    private List<String> words(String text) {
        List<String> words = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (int k = 0; k < text.length(); ) {
            int cp = text.codePointAt(k);
            k += Character.charCount(cp);
            if (stripAccents) cp = LlamaUnicode.nfdFirst(cp);
            if (LlamaUnicode.isWhitespace(cp)) {
                if (!cur.isEmpty()) { words.add(cur.toString()); cur.setLength(0); }
                continue;
            }
            int cat = LlamaUnicode.category(cp);
            if (cp == 0 || cp == 0xFFFD || cat == LlamaUnicode.CONTROL) continue;
            if (stripAccents && cat == LlamaUnicode.MARK) continue;
            int c = lowercase ? LlamaUnicode.toLower(cp) : cp;
            if (cat == LlamaUnicode.PUNCTUATION || (cp < 0x7F && cat == LlamaUnicode.SYMBOL) || isChinese(cp)) {
                if (!cur.isEmpty()) { words.add(cur.toString()); cur.setLength(0); }
                words.add(Character.toString(c));
            } else {
                cur.appendCodePoint(c);
            }
        }
        if (!cur.isEmpty()) words.add(cur.toString());
        return words;
    }

    // BERT's CJK ranges (with the 0x2B920 start Hugging Face's code has, which llama.cpp copies)
    private static boolean isChinese(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF)
                || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }

    private void encodeWord(String word, IntList out) {
        String w = "\u2581" + word;
        int n = w.length();
        int mark = out.n;
        for (int i = 0; i < n; i++) {
            boolean match = false;
            for (int j = Math.min(n, i + maxTokenChars + 1); j > i; j--) {
                Integer id = ids.get(w.substring(i, j));
                if (id != null) {
                    out.add(id);
                    match = true;
                    i = j - 1;
                    break;
                }
            }
            if (!match) {  // the whole word is unknown
                out.n = mark;
                break;
            }
        }
        if (out.n == mark && unk >= 0) out.add(unk);
    }

    @Override
    public byte[] tokenBytes(int id) {
        if (id < 0 || id >= bytes.length) {
            throw new LongspanException("token id " + id + " is outside the vocabulary (0.." + (bytes.length - 1) + ") of " + name);
        }
        return bytes[id];
    }

    /** Decodes, dropping the space the first word-start token carries. */
    @Override
    public String decode(int[] ids, int from, int to) {
        String s = Tokenizer.super.decode(ids, from, to);
        return s.startsWith(" ") ? s.substring(1) : s;
    }

    @Override public int vocabSize() { return tokens.length; }
    @Override public int bosId() { return bos; }
    @Override public int eosId() { return eos; }
    @Override public int padId() { return pad; }
    @Override public boolean addBos() { return addBos; }

    /** The separator BERT appends after a text ([SEP]), or -1. */
    public int sepId() { return sep; }

    @Override
    public int tokenId(String token) {
        Integer id = ids.get(token);
        return id == null ? -1 : id;
    }

    /** llama.cpp cleans WordPiece text, as BERT's tokenizer_config.json asks Hugging Face to. */
    @Override
    public SpaceCleanup spaceCleanup() { return SpaceCleanup.LLAMA_CPP; }

    /** llama.cpp's {@code llama_detokenize}: the pieces as they are, the first word's space included (Hugging Face drops it). */
    @Override
    public String detokenize(int[] ids) {
        return spaceCleanup().apply(Tokenizer.super.decode(ids, 0, ids.length));
    }

    @Override
    public String describe() {
        return name + " (WordPiece, " + tokens.length + " tokens)";
    }
}

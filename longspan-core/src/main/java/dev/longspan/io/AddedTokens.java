package dev.longspan.io;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Finds added (special) tokens in text before pre-tokenization, leftmost-longest, like Hugging Face's
 * AddedVocabulary: {@code lstrip}/{@code rstrip} swallow the whitespace beside a match,
 * {@code single_word} matches only when not inside a word.
 */
final class AddedTokens {

    /** One added token of a tokenizer.json (or a control/user-defined token of a GGUF vocabulary). */
    record Token(String content, int id, boolean special, boolean lstrip, boolean rstrip, boolean singleWord, boolean normalized) {}

    /** A piece of the split text: either plain text (id = -1) or an added token. */
    record Piece(String text, int id) {
        boolean isToken() { return id >= 0; }
    }

    private final List<Token> tokens;
    private final Pattern pattern;
    private final java.util.Map<String, Token> byContent = new java.util.HashMap<>();

    AddedTokens(List<Token> tokens) {
        this.tokens = List.copyOf(tokens);
        List<Token> sorted = new ArrayList<>(tokens);
        sorted.removeIf(t -> t.content().isEmpty());
        // longest first: Java's alternation takes the first alternative that matches at the leftmost position
        sorted.sort(Comparator.comparingInt((Token t) -> t.content().length()).reversed());
        StringBuilder re = new StringBuilder();
        for (Token t : sorted) {
            if (byContent.putIfAbsent(t.content(), t) != null) continue;
            if (!re.isEmpty()) re.append('|');
            re.append(Pattern.quote(t.content()));
        }
        pattern = re.isEmpty() ? null : Pattern.compile(re.toString());
    }

    boolean isEmpty() { return pattern == null; }

    List<Token> tokens() { return tokens; }

    // Hugging Face decides single_word with the regex \w (Unicode: alphabetic, marks, decimal digits,
    // connector punctuation, join controls): Java's \w with UNICODE_CHARACTER_CLASS is the same class
    private static final Pattern WORD = Pattern.compile("\\w", Pattern.UNICODE_CHARACTER_CLASS);

    private static boolean isWordChar(int cp) {
        return WORD.matcher(Character.toString(cp)).matches();
    }

    /**
     * Rust's char::is_whitespace (the Unicode White_Space property), which lstrip and rstrip
     * swallow: Java's isWhitespace without U+001C..U+001F, with U+0085 and the no-break spaces.
     */
    static boolean isWhiteSpace(char c) {
        if (c >= '\u001c' && c <= '\u001f') return false;
        return Character.isWhitespace(c) || c == '\u0085' || c == '\u00a0' || c == '\u2007' || c == '\u202f';
    }

    /** Splits text into plain pieces and added tokens; empty plain pieces are dropped. */
    List<Piece> split(String text) {
        List<Piece> out = new ArrayList<>();
        if (pattern == null) {
            if (!text.isEmpty()) out.add(new Piece(text, -1));
            return out;
        }
        Matcher m = pattern.matcher(text);
        int emitted = 0; // text before this index is already in out
        int from = 0;
        while (from <= text.length() && m.find(from)) {
            Token t = byContent.get(m.group());
            int s = m.start(), e = m.end();
            if (t.singleWord()) {
                boolean before = s > 0 && isWordChar(text.codePointBefore(s));
                boolean after = e < text.length() && isWordChar(text.codePointAt(e));
                if (before || after) {
                    from = s + 1;
                    continue;
                }
            }
            if (t.lstrip()) while (s > emitted && isWhiteSpace(text.charAt(s - 1))) s--;
            if (t.rstrip()) while (e < text.length() && isWhiteSpace(text.charAt(e))) e++;
            if (s > emitted) out.add(new Piece(text.substring(emitted, s), -1));
            out.add(new Piece(t.content(), t.id()));
            emitted = e;
            from = e;
        }
        if (emitted < text.length()) out.add(new Piece(text.substring(emitted), -1));
        return out;
    }
}

package dev.longspan.io;

/**
 * The code point classes llama.cpp's tokenizers use (its unicode.cpp tables are generated from
 * UnicodeData.txt: one general-category flag per code point, White_Space as "whitespace", the first
 * code point of the NFD decomposition as "nfd"), computed here from the JDK's Unicode data — as of
 * Unicode 15.1, the version llama.cpp's tables are generated from: the JDK 25 knows Unicode 16.0,
 * and the 5,185 code points 16.0 added are unassigned to llama.cpp (no letter, no case, no
 * decomposition), so they are here too. Found by tokenizing random text with both: U+1611F (a
 * Gurung Khema vowel sign) was a mark to the JDK, dropped by WordPiece's accent stripping, and an
 * unknown word to llama.cpp.
 */
final class LlamaUnicode {
    private LlamaUnicode() {}

    static final int UNDEFINED = 0x01, NUMBER = 0x02, LETTER = 0x04, SEPARATOR = 0x08, MARK = 0x10,
            PUNCTUATION = 0x20, SYMBOL = 0x40, CONTROL = 0x80;

    /** The category flag of a code point (exactly one of the constants above). */
    static int category(int cp) {
        if (isNewerThanUnicode15_1(cp)) return UNDEFINED;
        return switch (Character.getType(cp)) {
            case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER -> NUMBER;
            case Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER,
                 Character.MODIFIER_LETTER, Character.OTHER_LETTER -> LETTER;
            case Character.SPACE_SEPARATOR, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR -> SEPARATOR;
            case Character.NON_SPACING_MARK, Character.ENCLOSING_MARK, Character.COMBINING_SPACING_MARK -> MARK;
            case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
                 Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
                 Character.OTHER_PUNCTUATION -> PUNCTUATION;
            case Character.MATH_SYMBOL, Character.CURRENCY_SYMBOL, Character.MODIFIER_SYMBOL, Character.OTHER_SYMBOL -> SYMBOL;
            case Character.CONTROL, Character.FORMAT, Character.PRIVATE_USE, Character.SURROGATE -> CONTROL;
            default -> UNDEFINED;
        };
    }

    /** Unicode's White_Space property, as llama.cpp lists it. */
    static boolean isWhitespace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
    }

    /** The simple lowercase mapping (UnicodeData.txt's field 13), as of Unicode 15.1. */
    static int toLower(int cp) {
        return isNewerThanUnicode15_1(cp) ? cp : Character.toLowerCase(cp);
    }

    /**
     * The code points first assigned in Unicode 16.0 (DerivedAge.txt, Age=16.0), as inclusive
     * [first, last] pairs in increasing order; {@code LlamaUnicodeTest} checks that the JDK's Unicode
     * data is still 16.0's (a newer JDK would need the next version's additions here too).
     */
    private static final int[] ADDED_IN_16_0 = {
            0x00897, 0x00897, 0x01B4E, 0x01B4F, 0x01B7F, 0x01B7F, 0x01C89, 0x01C8A, 0x02427, 0x02429, 0x031E4, 0x031E5,
            0x0A7CB, 0x0A7CD, 0x0A7DA, 0x0A7DC, 0x105C0, 0x105F3, 0x10D40, 0x10D65, 0x10D69, 0x10D85, 0x10D8E, 0x10D8F,
            0x10EC2, 0x10EC4, 0x10EFC, 0x10EFC, 0x11380, 0x11389, 0x1138B, 0x1138B, 0x1138E, 0x1138E, 0x11390, 0x113B5,
            0x113B7, 0x113C0, 0x113C2, 0x113C2, 0x113C5, 0x113C5, 0x113C7, 0x113CA, 0x113CC, 0x113D5, 0x113D7, 0x113D8,
            0x113E1, 0x113E2, 0x116D0, 0x116E3, 0x11BC0, 0x11BE1, 0x11BF0, 0x11BF9, 0x11F5A, 0x11F5A, 0x13460, 0x143FA,
            0x16100, 0x16139, 0x16D40, 0x16D79, 0x18CFF, 0x18CFF, 0x1CC00, 0x1CCF9, 0x1CD00, 0x1CEB3, 0x1E5D0, 0x1E5FA,
            0x1E5FF, 0x1E5FF, 0x1F8B2, 0x1F8BB, 0x1F8C0, 0x1F8C1, 0x1FA89, 0x1FA89, 0x1FA8F, 0x1FA8F, 0x1FABE, 0x1FABE,
            0x1FAC6, 0x1FAC6, 0x1FADC, 0x1FADC, 0x1FADF, 0x1FADF, 0x1FAE9, 0x1FAE9, 0x1FBCB, 0x1FBEF};

    static boolean isNewerThanUnicode15_1(int cp) {
        if (cp < ADDED_IN_16_0[0] || cp > ADDED_IN_16_0[ADDED_IN_16_0.length - 1]) return false;
        int lo = 0, hi = ADDED_IN_16_0.length / 2 - 1;     // the last pair whose first is <= cp
        while (lo < hi) {
            int mid = (lo + hi + 1) >>> 1;
            if (ADDED_IN_16_0[2 * mid] <= cp) lo = mid; else hi = mid - 1;
        }
        return cp <= ADDED_IN_16_0[2 * lo + 1];
    }

    static boolean isLetter(int cp) { return category(cp) == LETTER; }

    static boolean isNumber(int cp) { return category(cp) == NUMBER; }

    /** llama.cpp's "NFD" of one code point: the first code point of its canonical decomposition. */
    static int nfdFirst(int cp) {
        if (isNewerThanUnicode15_1(cp)) return cp;
        String s = Character.toString(cp);
        String d = java.text.Normalizer.normalize(s, java.text.Normalizer.Form.NFD);
        return d.codePointAt(0);
    }

    /** CJK ideograph ranges (llama.cpp's unicode_cpt_is_han). */
    static boolean isHan(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF)
                || (cp >= 0x2CEB0 && cp <= 0x2EBEF) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }
}

package dev.longspan.io;

/**
 * The code point classes llama.cpp's tokenizers use (its unicode.cpp tables are generated from
 * UnicodeData.txt: one general-category flag per code point, White_Space as "whitespace", the first
 * code point of the NFD decomposition as "nfd"), computed here from the JDK's Unicode data.
 */
final class LlamaUnicode {
    private LlamaUnicode() {}

    static final int UNDEFINED = 0x01, NUMBER = 0x02, LETTER = 0x04, SEPARATOR = 0x08, MARK = 0x10,
            PUNCTUATION = 0x20, SYMBOL = 0x40, CONTROL = 0x80;

    /** The category flag of a code point (exactly one of the constants above). */
    static int category(int cp) {
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

    static boolean isLetter(int cp) { return category(cp) == LETTER; }

    static boolean isNumber(int cp) { return category(cp) == NUMBER; }

    /** llama.cpp's "NFD" of one code point: the first code point of its canonical decomposition. */
    static int nfdFirst(int cp) {
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

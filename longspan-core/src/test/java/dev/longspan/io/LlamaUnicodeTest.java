package dev.longspan.io;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** llama.cpp's code point classes are Unicode 15.1's; the JDK's data is newer and must be held back. */
class LlamaUnicodeTest {

    @Test
    void theJdkStillHasUnicode16AndTheTableItsAdditions() {
        int assigned = 0, newer = 0;
        for (int cp = 0; cp <= Character.MAX_CODE_POINT; cp++) {
            boolean isAssigned = Character.getType(cp) != Character.UNASSIGNED;
            if (isAssigned) assigned++;
            if (LlamaUnicode.isNewerThanUnicode15_1(cp)) {
                newer++;
                assertThat(isAssigned).as("U+%04X in the Unicode 16.0 table is assigned in the JDK", cp).isTrue();
            }
        }
        // Unicode 16.0's assigned code points (private use and surrogates included), as the JDK 25 has them, and 16.0's 5,185
        // additions (DerivedAge.txt). Another count means the JDK moved to another Unicode version: add
        // that version's additions to LlamaUnicode so the tokenizers keep llama.cpp's 15.1 classes.
        assertThat(assigned).as("code points the JDK assigns (JDK 25: Unicode 16.0)").isEqualTo(JDK25_ASSIGNED);
        assertThat(newer).isEqualTo(5185);
    }

    private static final int JDK25_ASSIGNED = 294_579;

    @Test
    void unicode16AdditionsHaveNoClassCaseOrDecomposition() {
        assertThat(LlamaUnicode.isNewerThanUnicode15_1(0x896)).isFalse();
        assertThat(LlamaUnicode.isNewerThanUnicode15_1(0x897)).isTrue();     // the first range, one code point
        assertThat(LlamaUnicode.isNewerThanUnicode15_1(0x898)).isFalse();
        assertThat(LlamaUnicode.isNewerThanUnicode15_1(0x1FBEF)).isTrue();   // the last one
        assertThat(LlamaUnicode.isNewerThanUnicode15_1(0x1FBF0)).isFalse();
        assertThat(Character.getType(0x1611F)).isEqualTo((int) Character.NON_SPACING_MARK);
        assertThat(LlamaUnicode.category(0x1611F)).isEqualTo(LlamaUnicode.UNDEFINED);
        assertThat(Character.toLowerCase(0xA7CB)).isEqualTo(0x0264);          // LATIN CAPITAL LETTER RAMS HORN, 16.0
        assertThat(LlamaUnicode.toLower(0xA7CB)).isEqualTo(0xA7CB);
        assertThat(LlamaUnicode.nfdFirst(0x16121)).isEqualTo(0x16121);         // 16.0's Gurung Khema vowel sign, composed
        // older code points keep the JDK's classes
        assertThat(LlamaUnicode.category('A')).isEqualTo(LlamaUnicode.LETTER);
        assertThat(LlamaUnicode.category(0x1F600)).isEqualTo(LlamaUnicode.SYMBOL);
        assertThat(LlamaUnicode.toLower('\u00C9')).isEqualTo('\u00E9');
        assertThat(LlamaUnicode.nfdFirst('\u00E9')).isEqualTo('e');
    }
}

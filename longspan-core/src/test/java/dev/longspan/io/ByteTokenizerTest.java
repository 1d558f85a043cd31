package dev.longspan.io;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ByteTokenizerTest {
    final ByteTokenizer tok = ByteTokenizer.INSTANCE;

    @ParameterizedTest
    @ValueSource(strings = {"", "a", "Ge1:1 In the beginning", "naïve café ü", "日本語のテキスト", "emoji 😀👍🏽", "tabs\tand\nnewlines\r\n", "\u0000\u007f"})
    void everyStringRoundTripsOneTokenPerByte(String s) {
        int[] ids = tok.encode(s);
        assertThat(ids).hasSize(s.getBytes(StandardCharsets.UTF_8).length);
        for (int id : ids) assertThat(id).isBetween(0, 255);
        assertThat(tok.decode(ids)).isEqualTo(s);
    }

    @Test
    void specialTokensAndBounds() {
        assertThat(tok.vocabSize()).isEqualTo(259);
        assertThat(tok.bosId()).isEqualTo(256);
        assertThat(tok.eosId()).isEqualTo(257);
        assertThat(tok.padId()).isEqualTo(258);
        assertThat(tok.decode(new int[]{256, 'h', 'i', 257, 258})).isEqualTo("hi");   // specials decode to nothing
        assertThatThrownBy(() -> tok.decode(new int[]{300})).isInstanceOf(LongspanException.class).hasMessageContaining("300");
        assertThatThrownBy(() -> tok.tokenBytes(-1)).isInstanceOf(LongspanException.class);
        // a multi-byte character split between two decodes does not throw
        byte[] e = "é".getBytes(StandardCharsets.UTF_8);
        assertThat(tok.decode(new int[]{e[0] & 0xff})).isEqualTo("\uFFFD");
    }
}

package dev.longspan.io;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

class Utf8Test {

    private static String hex(String s) {
        StringBuilder b = new StringBuilder();
        s.codePoints().forEach(c -> b.append(String.format("%04X ", c)));
        return b.toString().strip();
    }

    private static String decode(int... bytes) {
        byte[] b = new byte[bytes.length];
        for (int i = 0; i < b.length; i++) b[i] = (byte) bytes[i];
        return hex(Utf8.decode(b));
    }

    /** Unicode's maximal subparts (the standard's table 3-8 examples, as Python and Rust decode them). */
    @Test
    void illFormedPartsAsUnicodeRecommends() {
        assertThat(decode(0xED, 0xA8, 0x41)).isEqualTo("FFFD FFFD 0041");        // the JDK alone gives one U+FFFD
        assertThat(decode(0xED, 0xA0, 0x80, 0xED, 0xBF, 0xBF)).isEqualTo("FFFD FFFD FFFD FFFD FFFD FFFD");
        assertThat(decode(0xED, 0x9F, 0xBF)).isEqualTo("D7FF");                    // ED 80..9F is well formed
        assertThat(decode(0xC0, 0xAF, 0xE0, 0x80, 0xBF, 0xF0, 0x81, 0x82, 0x41)).isEqualTo("FFFD FFFD FFFD FFFD FFFD FFFD FFFD FFFD 0041");
        assertThat(decode(0xF1, 0x80, 0x80, 0xE1, 0x80, 0xC2, 0x41)).isEqualTo("FFFD FFFD FFFD 0041");
        assertThat(decode(0xE2, 0x82)).isEqualTo("FFFD");                          // a cut character: one U+FFFD
        assertThat(decode(0x41, 0xED)).isEqualTo("0041 FFFD");
    }

    /** A tokenizer.json with byte fallback decodes as Hugging Face's ByteFallback decoder: an ill-formed run of byte tokens is one U+FFFD per token. */
    @Test
    void byteFallbackRunsDecodeAsHuggingFacesDecoder() {
        BpeTokenizer t = BpeTokenizer.fromTokenizerJson(TestData.shared("models/stories260K/hf/tokenizer.json"));
        int pipe = t.tokenId("<0x7C>"), cont = t.tokenId("<0x9F>"), e2 = t.tokenId("<0xE2>"), x82 = t.tokenId("<0x82>"), xac = t.tokenId("<0xAC>");
        assertThat(hex(t.decode(new int[]{pipe, cont}))).isEqualTo("FFFD FFFD");          // '|' too: the run is ill-formed
        assertThat(t.decode(new int[]{pipe, e2, x82, xac})).isEqualTo("|\u20AC");          // a well-formed run: its text
        assertThat(hex(t.decode(new int[]{e2, x82}))).isEqualTo("FFFD FFFD");             // a cut character: one per token
    }

    @Test
    void wellFormedTextAsTheJdkDecodesIt() {
        Random r = new Random(3);
        for (int t = 0; t < 200; t++) {
            StringBuilder s = new StringBuilder();
            for (int i = 0; i < 40; i++) {
                int cp = switch (r.nextInt(4)) {
                    case 0 -> r.nextInt(0x80);
                    case 1 -> 0x80 + r.nextInt(0x780);
                    case 2 -> { int c = 0x800 + r.nextInt(0xF800); yield c >= 0xD800 && c <= 0xDFFF ? 0xD7FF : c; }
                    default -> 0x10000 + r.nextInt(0x100000);
                };
                s.appendCodePoint(cp);
            }
            byte[] b = s.toString().getBytes(StandardCharsets.UTF_8);
            assertThat(Utf8.decode(b)).isEqualTo(s.toString());
            // and any cut of it as the JDK cuts it, except for ED A0..BF (which encoded text never has)
            int cut = r.nextInt(b.length);
            assertThat(Utf8.decode(b, cut, b.length - cut)).isEqualTo(new String(b, cut, b.length - cut, StandardCharsets.UTF_8));
        }
    }
}

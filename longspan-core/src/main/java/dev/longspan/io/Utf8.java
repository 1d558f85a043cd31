package dev.longspan.io;

import java.nio.charset.StandardCharsets;

/**
 * Bytes to text with every ill-formed part shown as U+FFFD the way Unicode recommends ("maximal
 * subparts", chapter 3 of the standard: what Rust's {@code from_utf8_lossy} — so Hugging Face tokenizers —,
 * Python and browsers do). The JDK's decoder does so except for {@code ED A0..BF} (a UTF-16
 * surrogate written as UTF-8), which it replaces by one U+FFFD where the recommendation gives one
 * per byte; a decoded sequence of byte tokens can contain it.
 */
final class Utf8 {
    private Utf8() {}

    static String decode(byte[] b, int off, int len) {
        int end = off + len, start = off;
        StringBuilder out = null;
        for (int i = off; i + 1 < end; i++) {
            // ED may only be followed by 80..9F; with A0..BF it is a maximal subpart of its own
            if (b[i] == (byte) 0xED && (b[i + 1] & 0xE0) == 0xA0) {
                if (out == null) out = new StringBuilder(len);
                out.append(new String(b, start, i - start, StandardCharsets.UTF_8)).append('\uFFFD');
                start = i + 1;
            }
        }
        if (out == null) return new String(b, off, len, StandardCharsets.UTF_8);
        return out.append(new String(b, start, end - start, StandardCharsets.UTF_8)).toString();
    }

    static String decode(byte[] b) { return decode(b, 0, b.length); }
}

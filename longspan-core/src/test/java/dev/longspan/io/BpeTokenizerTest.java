package dev.longspan.io;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The Qwen3 tokenizer.json, id for id against Hugging Face tokenizers (via DJL) as the oracle. */
class BpeTokenizerTest {
    static BpeTokenizer qwen;
    static HuggingFaceTokenizer hf;

    @BeforeAll
    static void load() throws IOException {
        Path p = TestData.shared("tokenizers/qwen3/tokenizer.json");
        long t0 = System.nanoTime();
        qwen = BpeTokenizer.fromTokenizerJson(p);
        System.err.printf("Qwen3 tokenizer.json loaded in %.0f ms%n", (System.nanoTime() - t0) / 1e6);
        hf = HuggingFaceTokenizer.newInstance(p, Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false"));
    }

    @AfterAll
    static void close() {
        if (hf != null) hf.close();
    }

    static List<String> corpus() {
        List<String> c = new ArrayList<>(Arrays.asList(TestData.FIXED));
        c.addAll(TestData.random(300, 11));
        c.addAll(TestData.kjv(400));
        return c;
    }

    private static int[] oracle(String s) {
        long[] ids = hf.encode(s).getIds();
        int[] r = new int[ids.length];
        for (int i = 0; i < ids.length; i++) r[i] = (int) ids[i];
        return r;
    }

    /** Fails with the first differing position and the tokens around it. */
    static void assertSameIds(String text, int[] actual, int[] expected) {
        if (Arrays.equals(actual, expected)) return;
        int i = 0;
        while (i < Math.min(actual.length, expected.length) && actual[i] == expected[i]) i++;
        int from = Math.max(0, i - 3);
        throw new AssertionError("token ids differ at " + i + " for text " + Json.write(text.length() > 300 ? text.substring(0, 300) : text)
                + "\n  actual   " + Arrays.toString(Arrays.copyOfRange(actual, from, Math.min(actual.length, i + 5)))
                + "\n  expected " + Arrays.toString(Arrays.copyOfRange(expected, from, Math.min(expected.length, i + 5))));
    }

    @Test
    void encodesLikeHuggingFaceIdForId() {
        int checked = 0;
        for (String s : corpus()) {
            int[] expected = oracle(s);
            assertSameIds(s, qwen.encode(s), expected);
            checked++;
        }
        assertThat(checked).isGreaterThan(400);
    }

    @Test
    void decodesLikeHuggingFaceAndRoundTrips() {
        for (String s : corpus()) {
            int[] ids = qwen.encode(s);
            long[] l = Arrays.stream(ids).asLongStream().toArray();
            String text = qwen.decode(ids);
            assertThat(text).isEqualTo(hf.decode(l, false));
            assertThat(text).isEqualTo(java.text.Normalizer.normalize(s, java.text.Normalizer.Form.NFC));
        }
    }

    @Test
    void knownTokenizations() {
        // Qwen splits digits individually and keeps special tokens whole
        int[] ids = qwen.encode("12345");
        assertThat(ids).hasSize(5);
        assertThat(qwen.encode("<|im_start|>")).containsExactly(151644);
        assertThat(qwen.encode("Hello world")).containsExactly(9707, 1879);
        assertThat(qwen.eosId()).isEqualTo(qwen.tokenId("<|im_end|>"));
        assertThat(qwen.bosId()).isEqualTo(-1);
        assertThat(qwen.padId()).isEqualTo(151643);
        assertThat(qwen.stopIds()).contains(151645, 151643);
        assertThat(qwen.vocabSize()).isEqualTo(151669);
        assertThat(qwen.addBos()).isFalse();
        assertThat(qwen.isSpecial(151644)).isTrue();
        assertThat(new String(qwen.tokenBytes(151644))).isEqualTo("<|im_start|>");
        assertThat(qwen.describe()).contains("byte-level BPE");
    }

    @Test
    void longInputsAreFast() {
        // a long run without spaces and a long whitespace run exercise the heap merge
        String run = "ab".repeat(5000) + " " + " ".repeat(3000) + "x";
        assertThat(qwen.encode(run)).containsExactly(oracle(run));
    }

    @TempDir
    Path dir;

    @Test
    void refusesTokenizerJsonWithoutMerges() throws IOException {
        Path p = dir.resolve("tokenizer.json");
        Files.writeString(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}");
        assertThatThrownBy(() -> BpeTokenizer.fromTokenizerJson(p)).isInstanceOf(LongspanException.class).hasMessageContaining("merges");
        Files.writeString(p, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}");
        assertThatThrownBy(() -> BpeTokenizer.fromTokenizerJson(p)).isInstanceOf(LongspanException.class).hasMessageContaining("WordPiece");
        Files.writeString(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}");
        assertThatThrownBy(() -> BpeTokenizer.fromTokenizerJson(p)).isInstanceOf(LongspanException.class).hasMessageContaining("not in the vocabulary");
        assertThatThrownBy(() -> BpeTokenizer.fromTokenizerJson(dir.resolve("none.json"))).isInstanceOf(LongspanException.class).hasMessageContaining("no such file");
    }
}

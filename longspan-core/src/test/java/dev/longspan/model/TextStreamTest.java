package dev.longspan.model;

import static dev.longspan.io.TestData.shared;
import dev.longspan.io.BpeTokenizer;
import dev.longspan.io.GgufFile;
import dev.longspan.io.GgufTokenizers;
import dev.longspan.io.Tokenizer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/** Incremental detokenizing: the pieces add up to exactly the text the ids add, one complete character at a time. */
class TextStreamTest {
    static Stream<Tokenizer> tokenizers() {
        try (GgufFile spm = GgufFile.open(shared("tokenizers/llamacpp-vocab/ggml-vocab-llama-spm.gguf"))) {
            return Stream.of(BpeTokenizer.fromTokenizerJson(shared("models/stories260K/hf/tokenizer.json")),  // Metaspace + byte fallback
                    BpeTokenizer.fromTokenizerJson(shared("tokenizers/qwen3/tokenizer.json")),                 // byte-level
                    GgufTokenizers.fromGguf(spm));                                                             // SentencePiece
        }
    }

    static final String[] TEXTS = {"The little cat was hungry and did not like it.", " leading space", "café naïve — ½ ∀x",
            "I love 🍕 and 👨‍👩‍👧‍👦 families 🎉", "你好，世界！今天天气很好。", "a  b\n\n  c\t d", "Привет, мир! Ёжик"};

    @ParameterizedTest
    @MethodSource("tokenizers")
    void piecesConcatenateToTheDecodedTextAndSplitNoCharacter(Tokenizer tok) {
        SplittableRandom r = new SplittableRandom(13);
        for (String text : TEXTS) {
            int[] ids = tok.encode(text);
            for (int trial = 0; trial < 6; trial++) {
                int k = r.nextInt(0, ids.length);   // the first k ids are the context (the prompt): whole characters, as encoded text is
                while (tok.decode(ids, 0, k).endsWith("\uFFFD")) k--;
                TextStream s = new TextStream(tok, Arrays.copyOf(ids, k));
                List<String> pieces = new ArrayList<>();
                for (int i = k; i < ids.length; i++) pieces.add(s.push(ids[i]));
                pieces.add(s.finish());
                assertThat(tok.decode(ids, 0, k) + String.join("", pieces)).as("%s split at %d", text, k).isEqualTo(tok.decode(ids));
                assertThat(s.text()).isEqualTo(String.join("", pieces));
                for (String p : pieces) assertThat(p).doesNotContain("\uFFFD");
            }
        }
    }

    // the ids of "pizza🍕" and where the emoji's first partial token is (-1: the vocabulary has it whole)
    static int splitAt(Tokenizer tok, int[] ids) {
        for (int k = 1; k < ids.length; k++) if (tok.decode(ids, 0, k).endsWith("\uFFFD")) return k - 1;
        return -1;
    }

    @ParameterizedTest
    @MethodSource("tokenizers")
    void aCharacterSplitOverTokensIsHeldBackUntilComplete(Tokenizer tok) {
        int[] ids = tok.encode("pizza🍕");
        int k = splitAt(tok, ids);
        if (k < 0) return;
        TextStream s = new TextStream(tok, Arrays.copyOf(ids, k));
        StringBuilder seen = new StringBuilder();
        for (int i = k; i < ids.length; i++) {
            String p = s.push(ids[i]);
            if (i < ids.length - 1) assertThat(p).isEmpty();
            seen.append(p);
        }
        assertThat(seen.toString()).isEqualTo("🍕");
        assertThat(s.finish()).isEmpty();
    }

    @ParameterizedTest
    @MethodSource("tokenizers")
    void anUnfinishedCharacterComesOutAtTheEnd(Tokenizer tok) {
        int[] ids = tok.encode("pizza🍕");
        int k = splitAt(tok, ids);
        if (k < 0) return;
        TextStream s = new TextStream(tok, Arrays.copyOf(ids, k));
        assertThat(s.push(ids[k])).isEmpty();
        assertThat(s.finish()).isEqualTo("\uFFFD");
    }
}

package dev.longspan.io;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Hugging Face's own encodings and decodings, as the `tokenizers` library computes them, for
 * tokenizer.json files in the configurations real llama / mistral / qwen files use (made by
 * scripts/make-hf-tokenizer-vectors.py): SentencePiece-style with byte fallback, byte-level BPE with
 * regex splits, NFC / NFKC + Lowercase normalizers, Digits and every Split behaviour, added tokens
 * with lstrip / rstrip / single_word / normalized. Each file: 250 texts encoded, 120 id sequences
 * decoded (half of them random).
 */
class HfTokenizerVectorsTest {
    static Path resource(String name) throws URISyntaxException {
        return Path.of(HfTokenizerVectorsTest.class.getResource("/hf-tokenizers/" + name).toURI());
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama2-legacy", "llama2-metaspace", "nfkc-lowercase-metaspace", "gpt2-prefix-space", "tekken", "llama3-nfc",
            "digits-split-behaviours", "split-removed-inverted", "whitespace-nfd-strip", "punctuation-whitespacesplit", "chardelimiter-punctuation", "nfkc-lowercase-added", "unk-fused-metaspace-split"})
    void encodesAndDecodesAsHuggingFaceTokenizers(String name) throws Exception {
        Tokenizer tok = TokenizerLoader.load(resource(name + ".json"));
        List<String> wrong = new ArrayList<>();
        int encoded = 0, decoded = 0;
        for (String line : Files.readAllLines(resource(name + ".vectors.jsonl"), StandardCharsets.UTF_8)) {
            java.util.Map<String, Object> v = Json.parseObject(line, name + ".vectors.jsonl");
            int[] ids = ((List<?>) v.get("ids")).stream().mapToInt(o -> ((Number) o).intValue()).toArray();
            if (v.containsKey("text")) {
                encoded++;
                int[] got = tok.encode((String) v.get("text"), true);
                if (!java.util.Arrays.equals(got, ids)) wrong.add("encode " + Json.write(v.get("text")) + ": " + java.util.Arrays.toString(got) + " != " + java.util.Arrays.toString(ids));
            } else {
                decoded++;
                String got = tok.detokenize(ids);
                if (!got.equals(v.get("decoded"))) wrong.add("decode " + java.util.Arrays.toString(ids) + ": " + Json.write(got) + " != " + Json.write(v.get("decoded")));
            }
        }
        assertThat(encoded).isEqualTo(250);
        assertThat(decoded).isEqualTo(120);
        assertThat(wrong).as(name).isEmpty();
    }
}

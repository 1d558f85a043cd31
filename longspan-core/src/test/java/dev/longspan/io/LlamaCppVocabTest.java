package dev.longspan.io;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * llama.cpp's own tokenizer test vectors (tests/test-tokenizer-0): every text of {@code NAME.gguf.inp}
 * must give the ids of the matching line of {@code NAME.gguf.out}, tokenized as llama.cpp's test does
 * (no BOS/EOS added, control tokens in the text not parsed).
 */
class LlamaCppVocabTest {
    @TempDir
    Path dir;

    static final String SEP = "\n__ggml_vocab_test__\n";

    /** The test cases of one vocabulary, text → expected ids, in file order (llama.cpp keeps them in a map too). */
    static Map<String, int[]> vectors(String name) throws IOException {
        Path base = TestData.shared("tokenizers/llamacpp-vocab");
        String raw = Files.readString(base.resolve(name + ".gguf.inp"), StandardCharsets.UTF_8);
        List<String> lines = Files.readAllLines(base.resolve(name + ".gguf.out"), StandardCharsets.UTF_8);
        List<String> inputs = new ArrayList<>();
        int pos = 0;
        while (pos < raw.length()) {
            int next = raw.indexOf(SEP, pos);
            if (next < 0) { inputs.add(raw.substring(pos)); break; }
            inputs.add(raw.substring(pos, next));
            pos = next + SEP.length();
        }
        assertThat(inputs).hasSameSizeAs(lines);
        Map<String, int[]> out = new LinkedHashMap<>();
        for (int i = 0; i < inputs.size(); i++) {
            String o = lines.get(i).strip();
            out.put(inputs.get(i), o.isEmpty() ? new int[0] : Arrays.stream(o.split(" ")).mapToInt(Integer::parseInt).toArray());
        }
        return out;
    }

    static void check(Tokenizer t, String name) throws IOException {
        Map<String, int[]> v = vectors(name);
        assertThat(v).isNotEmpty();
        for (var e : v.entrySet()) {
            assertThat(t.encode(e.getKey(), false)).as("%s: \"%s\"", name, e.getKey()).containsExactly(e.getValue());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"ggml-vocab-gpt-2", "ggml-vocab-llama-spm", "ggml-vocab-phi-3"})
    void ggufVocabulariesMatchLlamaCpp(String name) throws IOException {
        try (GgufFile g = GgufFile.open(TestData.shared("tokenizers/llamacpp-vocab/" + name + ".gguf"))) {
            check(GgufTokenizers.fromGguf(g), name);
        }
    }

    /** A GGUF vocabulary written from a tokenizer.json the way llama.cpp's converter writes it. */
    private Tokenizer ggufFrom(String tokenizerJson, String pre, String arch) {
        BpeTokenizer json = BpeTokenizer.fromTokenizerJson(TestData.shared(tokenizerJson));
        int n = json.vocabSize();
        String[] tokens = new String[n];
        int[] types = new int[n];
        for (int i = 0; i < n; i++) {
            tokens[i] = json.token(i);
            types[i] = json.isSpecial(i) ? 3 : 1;
        }
        Path p = dir.resolve(pre + ".gguf");
        new GgufWriter().putString("general.architecture", arch)
                .putString("tokenizer.ggml.model", "gpt2").putString("tokenizer.ggml.pre", pre)
                .putStringArray("tokenizer.ggml.tokens", tokens).putI32Array("tokenizer.ggml.token_type", types)
                .putStringArray("tokenizer.ggml.merges", json.mergeStrings())
                .write(p);
        try (GgufFile f = GgufFile.open(p)) {
            return GgufTokenizers.fromGguf(f);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama-bpe", "qwen2"})
    void tokenizerJsonVocabulariesAsGgufMatchLlamaCpp(String which) throws IOException {
        Tokenizer t = which.equals("llama-bpe") ? ggufFrom("tokenizers/llama3/tokenizer.json", "llama-bpe", "llama")
                : ggufFrom("tokenizers/qwen3/tokenizer.json", "qwen2", "qwen3");
        check(t, "ggml-vocab-" + which);
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama-bpe", "qwen2"})
    void tokenizerJsonFilesMatchLlamaCpp(String which) throws IOException {
        Tokenizer t = BpeTokenizer.fromTokenizerJson(TestData.shared(which.equals("llama-bpe") ? "tokenizers/llama3/tokenizer.json" : "tokenizers/qwen3/tokenizer.json"));
        check(t, "ggml-vocab-" + which);
    }
}

package dev.longspan.io;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** A bad tokenizer.json is refused with the file and the field that is wrong. */
class TokenizerJsonTest {
    @TempDir
    Path dir;

    private static final String MODEL = "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}";

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}                                  | model.vocab[\"a\"]",
            "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\", \"ab\"]}}  | model.merges[1]",
            "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\", 7]}}     | model.merges[1]",
            "{\"model\": {\"type\": \"Unigram\", \"vocab\": {}}}                                                      | model.type",
            "{MODEL, \"added_tokens\": [{\"id\": 3, \"content\": \"<s>\"}, {\"id\": 4}]}                                | added_tokens[1]",
            "{MODEL, \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, {\"type\": \"Precompiled\"}]}} | normalizer.normalizers[1].type",
            "{MODEL, \"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"Glob\": \" \"}, \"content\": \"_\"}}         | normalizer.pattern",
            "{MODEL, \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\"}, {\"type\": \"UnicodeScripts\"}]}} | pre_tokenizer.pretokenizers[1].type",
            "{MODEL, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}} | pre_tokenizer.pattern.Regex",
            "{MODEL, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"String\": \" \"}, \"behavior\": \"Sideways\"}} | pre_tokenizer.behavior",
            "{MODEL, \"pre_tokenizer\": [1]}                                                                          | pre_tokenizer is not an object",
    })
    void errorsNameFileAndField(String json, String field) throws IOException {
        Path p = dir.resolve("tokenizer.json");
        Files.writeString(p, json.replace("MODEL", MODEL));
        assertThatThrownBy(() -> BpeTokenizer.fromTokenizerJson(p)).isInstanceOf(LongspanException.class)
                .hasMessageStartingWith(p + ": " + field);
    }

    /**
     * Meta's Llama 3 tokenizer.json adds BOS through its post-processor (a Sequence of ByteLevel and
     * TemplateProcessing) and its tokenizer_config.json has no add_bos_token: BOS is added, as
     * Hugging Face's encode adds it; add_bos_token, when present, decides.
     */
    @org.junit.jupiter.api.Test
    void theTemplatePostProcessorAddsBosWhenTheConfigDoesNotSay() throws IOException {
        Path d = Files.createDirectories(dir.resolve("llama3like"));
        Files.writeString(d.resolve("tokenizer.json"), "{" + MODEL + ", \"added_tokens\": [{\"id\": 3, \"content\": \"<|begin_of_text|>\", \"special\": true}],"
                + " \"post_processor\": {\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\"}, {\"type\": \"TemplateProcessing\","
                + " \"single\": [{\"SpecialToken\": {\"id\": \"<|begin_of_text|>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}]}]}}");
        Files.writeString(d.resolve("tokenizer_config.json"), "{\"bos_token\": \"<|begin_of_text|>\", \"eos_token\": \"<|end_of_text|>\"}");
        Tokenizer t = TokenizerLoader.load(d);
        assertThat(t.addBos()).isTrue();
        assertThat(t.bosId()).isEqualTo(3);
        Files.writeString(d.resolve("tokenizer_config.json"), "{\"bos_token\": \"<|begin_of_text|>\", \"add_bos_token\": false}");
        assertThat(TokenizerLoader.load(d).addBos()).isFalse();
    }
}

package dev.longspan.io;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class TokenizerLoaderTest {
    @TempDir
    Path dir;

    @Test
    void picksTheTokenizerForAPath() throws IOException {
        assertThat(TokenizerLoader.load(TestData.shared("gguf/tiny-random-llama.gguf"))).isInstanceOf(SentencePieceTokenizer.class);
        assertThat(TokenizerLoader.load(TestData.shared("tokenizers/qwen3"))).isInstanceOf(BpeTokenizer.class);
        Files.writeString(dir.resolve("config.json"), "{\"tokenizer\": \"byte\"}");
        assertThat(TokenizerLoader.load(dir)).isSameAs(ByteTokenizer.INSTANCE);
        Files.writeString(dir.resolve("config.json"), "{\"dim\": 8}");
        assertThat(TokenizerLoader.load(dir)).isSameAs(ByteTokenizer.INSTANCE);
        Files.writeString(dir.resolve("config.json"), "{\"tokenizer\": \"wordpiece\"}");
        assertThatThrownBy(() -> TokenizerLoader.load(dir)).isInstanceOf(LongspanException.class).hasMessageContaining("wordpiece");
        Files.writeString(dir.resolve("notes.txt"), "hello");
        assertThatThrownBy(() -> TokenizerLoader.load(dir.resolve("notes.txt"))).isInstanceOf(LongspanException.class).hasMessageContaining("not a GGUF file");
        assertThatThrownBy(() -> TokenizerLoader.load(dir.resolve("absent"))).isInstanceOf(LongspanException.class).hasMessageContaining("no such file");
    }
}

package dev.longspan.io;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.assertj.core.api.Assertions.assertThat;

/** The two clean-ups of tokenization spaces, on the cases where their rules differ and where they meet. */
class SpaceCleanupTest {

    // input | llama.cpp's llama_detokenize | Hugging Face's clean_up_tokenization (expected values worked out from their code)
    @ParameterizedTest
    @CsvSource(delimiter = '|', quoteCharacter = '"', value = {
            "Hello , world ! How are you ?|Hello, world! How are you?|Hello, world! How are you?",
            "\" .\"|.|.",                                                  // a leading space goes too
            "a  .|a .|a .",                                                // one space per punctuation mark
            "rock ' n ' roll|rock'n'roll|rock'n'roll",
            "x ' ' y|x'' y|x'' y",
            "He 's , we 're , they 've , I 'm|He's, we're, they've, I'm|He's, we're, they've, I'm",
            "I 'll , I 'd , don 't|I 'll, I 'd, don 't|I 'll, I 'd, don 't",   // neither touches 'll 'd 't
            "do n't|do n't|don't",                                         // only Hugging Face joins n't
            "\"x '\"|x '|x '",                                             // an apostrophe at the end stays
            "\"é , ü ?\"|é, ü?|é, ü?",
            "\"\"|\"\"|\"\""})
    void cleansAsLlamaCppAndHuggingFace(String in, String llama, String hf) {
        assertThat(SpaceCleanup.LLAMA_CPP.apply(in)).isEqualTo(llama);
        assertThat(SpaceCleanup.HUGGING_FACE.apply(in)).isEqualTo(hf);
        assertThat(SpaceCleanup.NONE.apply(in)).isEqualTo(in);
    }
}

package dev.longspan.format;

import dev.longspan.io.GgufFile;
import dev.longspan.kernel.GgmlType;
import dev.longspan.model.InferenceSession;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every stories260K GGUF llama.cpp wrote (the F32 conversion and llama-quantize's F16, BF16, Q6_K, Q4_K_M and
 * Q2_K targets, which for rows of 172 mix Q8_0, Q5_0, IQ4_NL and F16) loads, and its logits on a few tokens
 * agree with the F32 file's within what the weight types allow.
 */
class Stories260KGgufTest {
    static Path data(String rel) {
        Path p = Path.of(System.getProperty("user.dir")).resolve("../../shared/data/models/stories260K").resolve(rel).normalize();
        return Files.exists(p) ? p : Path.of("/work/shared/data/models/stories260K").resolve(rel);
    }

    static float[] logits(Path p, int[] toks) {
        ModelLoader.LoadedModel lm = ModelLoader.load(p);
        return new InferenceSession(lm.model(), toks.length).feed(toks, 0, toks.length, toks.length);
    }

    static int[] prompt() {
        ModelLoader.LoadedModel lm = ModelLoader.load(data("stories260K.gguf"));
        int[] text = lm.tokenizer().encode("Once upon a time there was a little");
        int[] toks = new int[text.length + 1];
        toks[0] = lm.tokenizer().bosId();
        System.arraycopy(text, 0, toks, 1, text.length);
        return toks;
    }

    @ParameterizedTest
    @CsvSource({"quant/stories260K-F16.gguf, 0.01", "quant/stories260K-BF16.gguf, 0.03", "quant/stories260K-Q6_K.gguf, 0.05",
            "quant/stories260K-Q4_K_M.gguf, 0.15", "quant/stories260K-Q2_K.gguf, 0.4"})
    void quantizedFilesAgreeWithF32(String file, double tolerance) {
        int[] toks = prompt();
        float[] ref = logits(data("stories260K.gguf"), toks);
        float[] got = logits(data(file), toks);
        double err = 0, scale = 0;
        for (int i = 0; i < ref.length; i++) {
            err = Math.max(err, Math.abs(got[i] - ref[i]));
            scale = Math.max(scale, Math.abs(ref[i]));
        }
        assertThat(err / scale).as(file).isLessThan(tolerance);
    }

    @Test
    void theQuantizedFilesMixTheTypesLlamaCppChose() {
        Set<GgmlType> seen = EnumSet.noneOf(GgmlType.class);
        for (String f : new String[]{"F16", "BF16", "Q6_K", "Q4_K_M", "Q2_K"}) {
            try (GgufFile g = GgufFile.open(data("quant/stories260K-" + f + ".gguf"))) {
                for (GgufFile.Tensor t : g.tensors().values()) seen.add(t.type());
            }
        }
        assertThat(seen).contains(GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q5_0, GgmlType.IQ4_NL);
    }
}

package dev.longspan.model;

import dev.longspan.format.ModelLoader;
import dev.longspan.io.Json;
import dev.longspan.train.TrainConfig;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ModelConfigErrorsTest {
    @TempDir
    Path dir;

    static TrainConfig parse(String model) {
        String json = "{\"model\": {\"vocab_size\": 259, \"dim\": 16, \"layers\": 2, \"heads\": 2, \"ffn_dim\": 32" + model + "}, \"train\": {}}";
        return TrainConfig.fromJson(Json.parseObject(json, "configs/x.json"), "configs/x.json");
    }

    @Test
    void aBadPatternNamesTheFileAndTheLayersField() {
        assertThatThrownBy(() -> parse(", \"attention\": [\"dense\", \"foo\"]")).isInstanceOf(LongspanException.class)
                .hasMessageStartingWith("configs/x.json: model: field attention[1]: ").hasMessageContaining("unknown pattern 'foo'");
        assertThatThrownBy(() -> parse(", \"attention\": \"window:size=0\"")).hasMessageStartingWith("configs/x.json: model: field attention[0]: ");
    }

    @Test
    void tokenShiftIsABooleanOrACountAndRoundTrips() {
        assertThat(parse("").model().tokenShift()).isZero();
        assertThat(parse(", \"token_shift\": false").model().tokenShift()).isZero();
        assertThat(parse(", \"token_shift\": true").model().tokenShift()).isEqualTo(1);
        ModelConfig three = parse(", \"token_shift\": 3").model();
        assertThat(three.tokenShift()).isEqualTo(3);
        assertThat(three.parameterCount()).isEqualTo(parse("").model().parameterCount() + 3L * 259 * 16);
        // written back: 1 as true (the configs written before counts), more as the count
        assertThat(three.toJson().get("token_shift")).isEqualTo(3L);
        assertThat(parse(", \"token_shift\": true").model().toJson().get("token_shift")).isEqualTo(true);
        assertThat(parse("").model().toJson()).doesNotContainKey("token_shift");
        for (String bad : new String[] {"9", "-1", "1.5", "\"2\""}) {
            assertThatThrownBy(() -> parse(", \"token_shift\": " + bad)).as(bad).isInstanceOf(LongspanException.class)
                    .hasMessageStartingWith("configs/x.json: ").hasMessageContaining("token_shift").hasMessageContaining("0..8");
        }
    }

    @Test
    void aBadRopeNamesTheFileAndField() {
        assertThatThrownBy(() -> parse(", \"rope\": \"kind=bogus\"")).isInstanceOf(LongspanException.class)
                .hasMessageStartingWith("configs/x.json: model: field rope: ").hasMessageContaining("bogus");
    }

    Path modelDir() {
        ModelConfig c = new ModelConfig(259, 16, 2, 2, 2, 8, 32, 1e-5f, true, "kind=rope,base=10000,pairing=half",
                Collections.nCopies(2, "dense"), "byte", 64);
        Transformer m = new Transformer(c);
        m.initialize(1);
        Path d = dir.resolve("m");
        dev.longspan.format.LongspanFormat.save(d, m);
        return d;
    }

    @Test
    void theConfigOfAModelWithTruncatedOrMissingWeightsFails() throws IOException {
        Path d = modelDir();
        assertThat(ModelLoader.config(d).layers()).isEqualTo(2);
        Path w = d.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(w);
        Files.write(w, java.util.Arrays.copyOf(bytes, bytes.length - 100));
        assertThatThrownBy(() -> ModelLoader.config(d)).isInstanceOf(LongspanException.class).hasMessageContaining("model.safetensors").hasMessageContaining("truncated");
        Files.delete(w);
        assertThatThrownBy(() -> ModelLoader.config(d)).isInstanceOf(LongspanException.class).hasMessageContaining("no model.safetensors");
    }
}

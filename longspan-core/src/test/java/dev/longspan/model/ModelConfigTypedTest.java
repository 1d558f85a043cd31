package dev.longspan.model;

import dev.longspan.attention.Pattern;
import dev.longspan.io.Json;
import dev.longspan.position.RopeConfig;
import dev.longspan.position.RopeKind;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** A config holds parsed values: every field is checked where it is read, overrides apply on top. */
class ModelConfigTypedTest {
    // head_dim 8
    static final String BASE = "{\"vocab_size\": 259, \"dim\": 16, \"layers\": 2, \"heads\": 2, \"ffn_dim\": 32%s}";

    static ModelConfig parse(String extra) {
        return ModelConfig.fromJson(Json.parseObject(BASE.formatted(extra), "m/config.json"), "m/config.json");
    }

    @Test
    void ropeAsAnObjectEqualsTheSameSpecString() {
        ModelConfig fromObject = parse(", \"rope\": {\"kind\": \"yarn\", \"base\": 500000, \"factor\": 4, \"orig\": 64, \"rot\": 4}");
        ModelConfig fromSpec = parse(", \"rope\": \"kind=yarn,base=500000,factor=4,orig=64,rot=4\"");
        assertThat(fromObject.rope()).isEqualTo(fromSpec.rope());
        assertThat(fromObject.rope().kind()).isEqualTo(RopeKind.YARN);
        assertThat(fromObject.rope().base()).isEqualTo(500000);
        assertThat(fromObject.rope().rotaryDims()).isEqualTo(4);
        assertThat(fromObject.rope().headDim()).isEqualTo(8);
    }

    @Test
    void aMissingRopeIsPlainRopeOverTheWholeHead() {
        assertThat(parse("").rope()).isEqualTo(RopeConfig.plain(10000, 8));
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "\"rope\": 10000|field rope: must be a spec string",
            "\"rope\": {\"kind\": \"yarn\", \"factor\": 4}|field rope: ",
            "\"rope\": {\"kind\": \"rope\", \"colour\": 1}|unknown RoPE field 'colour'",
            "\"tokenizer\": 7|field 'tokenizer' must be a non-empty string",
            "\"tokenizer\": \"\"|field 'tokenizer' must be a non-empty string",
            "\"tied_embeddings\": \"yes\"|field 'tied_embeddings' must be true or false",
            "\"attention\": [\"dense\", 3]|field attention: every entry must be a pattern spec string",
            "\"attention\": [\"dense\", \"window:size=0\"]|field attention[1]: "})
    void wrongTypedOrBadFieldsFailNamingFileAndField(String field, String message) {
        assertThatThrownBy(() -> parse(", " + field)).isInstanceOf(LongspanException.class)
                .hasMessageStartingWith("m/config.json: ").hasMessageContaining(message);
    }

    @Test
    void configJsonKeepsSpecStringsAndReadsBackEqual() {
        ModelConfig c = parse(", \"rope\": {\"kind\": \"linear\", \"factor\": 2, \"base\": 500000}, \"attention\": [\"dense\", \"window : size=4\"]");
        assertThat(c.attention()).containsExactly(new Pattern.Dense(), new Pattern.Window(4));
        assertThat(c.toJson()).containsEntry("rope", "kind=linear,base=500000,pairing=half,factor=2")
                .containsEntry("attention", List.of("dense", "window:size=4"));
        assertThat(ModelConfig.fromJson(Json.parseObject(Json.write(c.toJson()), "again"), "again")).isEqualTo(c);
        // a partial rotary width is written, a full one is implied by head_dim
        assertThat(parse(", \"rope\": \"kind=rope,rot=4\"").toJson()).containsEntry("rope", "kind=rope,base=10000,rot=4,pairing=half");
    }

    @Test
    void aRopeOverrideKeepsTheModelsBaseAndRotaryWidthUnlessGiven() {
        ModelConfig c = parse(", \"rope\": \"kind=rope,base=500000,rot=4,pairing=interleaved\"");
        RopeConfig yarn = c.withOverrides(null, "kind=yarn,factor=8,orig=64").rope();
        assertThat(yarn.kind()).isEqualTo(RopeKind.YARN);
        assertThat(yarn.base()).isEqualTo(500000);
        assertThat(yarn.rotaryDims()).isEqualTo(4);
        assertThat(yarn.pairing()).isEqualTo(c.rope().pairing());
        assertThat(yarn.factor()).isEqualTo(8);
        // given fields win; knobs both kinds have carry over (orig from yarn to llama3), others take defaults
        RopeConfig l3 = parse(", \"rope\": \"kind=yarn,factor=4,orig=64,beta_fast=16\"").withOverrides(null, "kind=llama3,base=20000").rope();
        assertThat(l3.base()).isEqualTo(20000);
        assertThat(l3.factor()).isEqualTo(4);
        assertThat(l3.originalContext()).isEqualTo(64);
        assertThat(l3.betaFast()).isEqualTo(32);
        // without a kind the model's kind stays
        assertThat(parse(", \"rope\": \"kind=linear,factor=2\"").withOverrides(null, "factor=3").rope())
                .isEqualTo(RopeConfig.builder(RopeKind.LINEAR, 8).factor(3).build());
    }

    @Test
    void badOverridesNameTheOption() {
        ModelConfig c = parse("");
        assertThatThrownBy(() -> c.withOverrides(null, "kind=yarn,factor=8")).isInstanceOf(LongspanException.class)
                .hasMessageStartingWith("--rope: ").hasMessageContaining("orig");
        assertThatThrownBy(() -> c.withOverrides(null, "kind=rope,dim=16")).hasMessageStartingWith("--rope: ").hasMessageContaining("head dimension 8");
        assertThatThrownBy(() -> c.withOverrides("window:size=-1", null)).isInstanceOf(LongspanException.class)
                .hasMessageStartingWith("--attention[0]: ");
        assertThat(c.withOverrides(null, null)).isSameAs(c);
        assertThat(c.withOverrides("block:size=4", null).attention()).containsExactly(new Pattern.Block(4), new Pattern.Block(4));
    }
}

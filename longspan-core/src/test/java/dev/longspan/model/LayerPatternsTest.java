package dev.longspan.model;

import dev.longspan.attention.Pattern;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class LayerPatternsTest {
    static final String W = "window:size=8";

    // which of 6 layers get full attention, as a string of F (full) and s (sparse); interleaved puts
    // the k full layers at the centres of k equal segments, rounding half up
    // the canonical spec of each layer's pattern
    static List<String> specs(List<Pattern> plan) {
        return plan.stream().map(Pattern::spec).toList();
    }

    static String shape(List<String> plan) {
        StringBuilder b = new StringBuilder();
        for (String p : plan) b.append(p.equals("dense") ? 'F' : 's');
        return b.toString();
    }

    @ParameterizedTest
    @CsvSource({"bottom,2,FFssss", "top,2,ssssFF", "interleaved,2,sFssFs", "interleaved,3,sFsFsF", "interleaved,1,sssFss",
            "bottom,0,ssssss", "top,6,FFFFFF"})
    void masformerPlacements(String placement, int full, String expected) {
        List<String> plan = specs(LayerPatterns.expand("masformer|full=" + full + "|placement=" + placement + "|sparse=" + W, 6, "t"));
        assertThat(shape(plan)).isEqualTo(expected);
        assertThat(plan).allMatch(p -> p.equals("dense") || p.equals(W));
        // the JSON form gives the same plan
        assertThat(specs(LayerPatterns.expand(Map.of("plan", "masformer", "full", (long) full, "placement", placement, "sparse", W), 6, "t")))
                .isEqualTo(plan);
    }

    @Test
    void listedLayersAndCustomFullPattern() {
        List<String> plan = specs(LayerPatterns.expand("masformer|layers=0,3|dense=dilated:w=4,8;r=1,2|sparse=" + W, 5, "t"));
        assertThat(plan).containsExactly("dilated:w=4,8;r=1,2", W, W, "dilated:w=4,8;r=1,2", W);
        assertThat(specs(LayerPatterns.expand(Map.of("plan", "masformer", "layers", List.of(1L), "sparse", W), 3, "t")))
                .containsExactly(W, "dense", W);
    }

    @Test
    void oneSpecOrAListPerLayer() {
        assertThat(specs(LayerPatterns.expand("block:size=4", 3, "t"))).containsExactly("block:size=4", "block:size=4", "block:size=4");
        assertThat(specs(LayerPatterns.expand(List.of("dense", W), 2, "t"))).containsExactly("dense", W);
        assertThat(specs(LayerPatterns.expand((Object) null, 2, "t"))).containsExactly("dense", "dense");
    }

    @Test
    void badPlansNameTheProblem() {
        assertThatThrownBy(() -> LayerPatterns.expand(List.of("dense"), 2, "cfg: attention")).isInstanceOf(LongspanException.class)
                .hasMessageContaining("cfg: attention").hasMessageContaining("2 layers");
        assertThatThrownBy(() -> LayerPatterns.expand("masformer|full=2", 4, "t")).hasMessageContaining("sparse=");
        assertThatThrownBy(() -> LayerPatterns.expand("masformer|full=9|sparse=" + W, 4, "t")).hasMessageContaining("full must be between");
        assertThatThrownBy(() -> LayerPatterns.expand("masformer|full=1|placement=middle|sparse=" + W, 4, "t")).hasMessageContaining("unknown placement 'middle'");
        assertThatThrownBy(() -> LayerPatterns.expand("masformer|layers=0,7|sparse=" + W, 4, "t")).hasMessageContaining("layer index 7");
        assertThatThrownBy(() -> LayerPatterns.expand("masformer|colour=red|sparse=" + W, 4, "t")).hasMessageContaining("unknown masformer key 'colour'");
        assertThatThrownBy(() -> LayerPatterns.expand(Map.of("plan", "longnet"), 4, "t")).hasMessageContaining("unknown plan 'longnet'");
    }
}

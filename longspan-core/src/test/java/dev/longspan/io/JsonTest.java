package dev.longspan.io;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class JsonTest {

    @Test
    void parsesEveryValueKind() {
        Map<String, Object> m = Json.parseObject(
                "{\"a\": 1, \"b\": -2.5e3, \"c\": [true, false, null], \"d\": {\"e\": \"x\\\"y\\u00e9\\n\"}, \"big\": 123456789012345678901}",
                "test");
        assertThat(m.get("a")).isEqualTo(1L);
        assertThat(m.get("b")).isEqualTo(-2500.0);
        assertThat(m.get("c")).isEqualTo(java.util.Arrays.asList(true, false, null));
        assertThat(((Map<?, ?>) m.get("d")).get("e")).isEqualTo("x\"yé\n");
        assertThat(m.get("big")).isInstanceOf(Double.class);
        assertThat(m.keySet()).containsExactly("a", "b", "c", "d", "big");
    }

    @Test
    void surrogatePairsDecode() {
        assertThat(Json.parse("\"\\ud83d\\ude00\"", "t")).isEqualTo("😀");
    }

    @Test
    void roundTripsThroughWriter() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("s", "tab\tquote\"back\\slash\u0001");
        m.put("n", 3L);
        m.put("d", 0.1);
        m.put("l", List.of(1L, 2L));
        m.put("nested", Map.of("k", true));
        assertThat(Json.parse(Json.write(m), "t")).isEqualTo(m);
        assertThat(Json.parse(Json.writePretty(m), "t")).isEqualTo(m);
    }

    @Test
    void errorsNameTheSourceAndPosition() {
        assertThatThrownBy(() -> Json.parse("{\"a\": 1,\n \"b\" 2}", "config.json"))
                .isInstanceOf(LongspanException.class)
                .hasMessageContaining("config.json")
                .hasMessageContaining("line 2");
        assertThatThrownBy(() -> Json.parse("[1, 2", "x")).isInstanceOf(LongspanException.class);
        assertThatThrownBy(() -> Json.parse("{} extra", "x")).isInstanceOf(LongspanException.class);
        assertThatThrownBy(() -> Json.parseObject("[1]", "x")).hasMessageContaining("object");
    }
}

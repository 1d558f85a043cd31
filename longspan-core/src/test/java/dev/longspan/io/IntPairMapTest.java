package dev.longspan.io;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/** IntPairMap against a HashMap of boxed pairs, through growth, negative ids and repeated keys. */
class IntPairMapTest {
    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3})
    void agreesWithHashMap(long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        IntPairMap map = new IntPairMap(4);  // small, so that it grows many times
        Map<List<Integer>, Integer> ref = new HashMap<>();
        for (int v = 0; v < 20_000; v++) {
            int a = rnd.nextInt(-50, 300), b = rnd.nextInt(-50, 300);
            boolean stored = map.putIfAbsent(a, b, v);
            assertThat(stored).isEqualTo(ref.putIfAbsent(List.of(a, b), v) == null);
        }
        for (int a = -50; a < 300; a++) {
            for (int b = -50; b < 300; b++) assertThat(map.get(a, b)).isEqualTo(ref.getOrDefault(List.of(a, b), -1));
        }
    }
}

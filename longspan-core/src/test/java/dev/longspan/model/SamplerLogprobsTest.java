package dev.longspan.model;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

class SamplerLogprobsTest {
    @Test
    void logprobsAreTheLogSoftmaxAndTheTopAreTheLargestInOrder() {
        SplittableRandom r = new SplittableRandom(4);
        for (int trial = 0; trial < 50; trial++) {
            int V = r.nextInt(1, 300);
            float[] logits = new float[V];
            for (int i = 0; i < V; i++) logits[i] = (float) r.nextDouble(-20, 20);
            int chosen = r.nextInt(V), n = r.nextInt(0, 12);
            Sampler.Choice c = Sampler.logprobs(logits, chosen, n);
            double sum = 0;
            for (float l : logits) sum += Math.exp(l);
            assertThat(c.logprob()).isCloseTo(logits[chosen] - Math.log(sum), within(1e-9 * Math.max(1, Math.abs(c.logprob()))));
            Integer[] order = new Integer[V];
            for (int i = 0; i < V; i++) order[i] = i;
            java.util.Arrays.sort(order, (a, b) -> logits[a] != logits[b] ? Float.compare(logits[b], logits[a]) : Integer.compare(a, b));
            assertThat(c.top()).hasSize(Math.min(n, V));
            for (int k = 0; k < c.top().size(); k++) assertThat(c.top().get(k).id()).isEqualTo(order[k]);
        }
    }

    @Test
    void tiesKeepTheLowerIdFirst() {
        Sampler.Choice c = Sampler.logprobs(new float[]{1, 3, 3, 0, 3}, 0, 2);
        assertThat(c.top()).extracting(Sampler.Alternative::id).containsExactly(1, 2);
        assertThat(c.top().get(0).logprob()).isEqualTo(c.top().get(1).logprob());
    }
}

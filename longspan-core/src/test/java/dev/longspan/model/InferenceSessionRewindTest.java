package dev.longspan.model;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.channels.Channels;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Prefix reuse (longspan serve): a rewound or reloaded session continues exactly as a fresh one. */
class InferenceSessionRewindTest {

    @ParameterizedTest
    @ValueSource(strings = {"dense", "window:size=3", "block:size=4", "window:size=2+dilated:w=6;r=3"})
    void rewoundSessionEqualsAFreshOneFedTheSamePrefix(String attention) {
        ModelConfig c = TrainingPassTest.tiny(false, 1, attention);
        SplittableRandom r = new SplittableRandom(3);
        Transformer m = InferenceSessionTest.perturbed(c, 5, r, 0.2);
        int[] doc = InferenceSessionTest.randomTokens(r, 12, c.vocabSize());
        int[] first = InferenceSessionTest.randomTokens(r, 3, c.vocabSize()), second = InferenceSessionTest.randomTokens(r, 4, c.vocabSize());
        // a ring of reach + 8 positions still holds what the second question reaches after 5 are cut
        InferenceSession reused = new InferenceSession(m, 32, 8, InferenceOptions.DEFAULT);
        reused.feed(doc, 0, doc.length);
        reused.feed(first, 0, first.length);
        for (int t = 0; t < 2; t++) reused.feed(new int[]{t + 1}, 0, 1);   // an answer decoded token by token
        assertThat(reused.rewind(doc.length)).isTrue();
        assertThat(reused.length()).isEqualTo(doc.length);
        InferenceSession fresh = new InferenceSession(m, 32, 8, InferenceOptions.DEFAULT);
        fresh.feed(doc, 0, doc.length);
        assertThat(reused.feed(second, 0, second.length)).isEqualTo(fresh.feed(second, 0, second.length));
        assertThat(reused.feed(new int[]{7}, 0, 1)).isEqualTo(fresh.feed(new int[]{7}, 0, 1));
    }

    @Test
    void aWindowedRingThatOverwroteReachablePositionsRefusesToRewind() {
        ModelConfig c = TrainingPassTest.tiny(false, 1, "window:size=3");
        Transformer m = InferenceSessionTest.perturbed(c, 5, new SplittableRandom(1), 0.2);
        InferenceSession s = new InferenceSession(m, 64, 2, InferenceOptions.DEFAULT);   // ring: 3 + 2
        int[] tokens = InferenceSessionTest.randomTokens(new SplittableRandom(2), 20, c.vocabSize());
        s.feed(tokens, 0, 20);
        assertThat(s.rewind(17)).isFalse();
        assertThat(s.length()).isEqualTo(20);
        assertThat(s.rewind(18)).isTrue();
        assertThat(s.rewind(0)).isTrue();
    }

    @ParameterizedTest
    @ValueSource(strings = {"selectmerge:region=2,top=3,merge=1", "selectmerge:region=3,top=2,merge=2,score=mean",
            "window:size=2+selectmerge:region=2,top=2,merge=1,score=max"})
    void selectAndMergeSummariesAreRebuiltToTheCut(String attention) throws Exception {
        ModelConfig c = TrainingPassTest.tiny(false, 1, attention);
        SplittableRandom r = new SplittableRandom(5);
        Transformer m = InferenceSessionTest.perturbed(c, 5, r, 0.2);
        int[] doc = InferenceSessionTest.randomTokens(r, 13, c.vocabSize()), more = InferenceSessionTest.randomTokens(r, 6, c.vocabSize());
        int[] next = InferenceSessionTest.randomTokens(r, 5, c.vocabSize());
        // parts of 4: the rebuilt summaries must not depend on how the prefix was fed
        InferenceSession reused = new InferenceSession(m, 32, 4, InferenceOptions.DEFAULT);
        reused.feed(doc, 0, doc.length);
        reused.feed(more, 0, more.length);
        assertThat(reused.rewind(doc.length - 2)).isTrue();
        InferenceSession fresh = new InferenceSession(m, 32, 4, InferenceOptions.DEFAULT);
        fresh.feed(doc, 0, doc.length - 2);
        assertThat(reused.feed(next, 0, next.length)).isEqualTo(fresh.feed(next, 0, next.length));
        for (int t = 0; t < 3; t++) assertThat(reused.feed(new int[]{t + 2}, 0, 1)).isEqualTo(fresh.feed(new int[]{t + 2}, 0, 1));

        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        assertThat(fresh.writeCache(Channels.newChannel(bytes))).isTrue();
        InferenceSession read = new InferenceSession(m, 32, 4, InferenceOptions.DEFAULT);
        read.readCache(Channels.newChannel(new ByteArrayInputStream(bytes.toByteArray())));
        assertThat(read.feed(new int[]{9, 1}, 0, 2)).isEqualTo(fresh.feed(new int[]{9, 1}, 0, 2));
    }

    @Test
    void selectAndMergeSummariesInAHalfCacheCannotBeCut() throws Exception {
        ModelConfig c = TrainingPassTest.tiny(false, 1, "selectmerge:region=2,top=3,merge=1");
        Transformer m = InferenceSessionTest.perturbed(c, 5, new SplittableRandom(1), 0.2);
        InferenceSession s = new InferenceSession(m, 32, 8, new InferenceOptions(true, 0));
        s.feed(InferenceSessionTest.randomTokens(new SplittableRandom(2), 8, c.vocabSize()), 0, 8);
        assertThat(s.rewind(4)).isFalse();
        assertThat(s.length()).isEqualTo(8);
        assertThat(s.writeCache(Channels.newChannel(new ByteArrayOutputStream()))).isFalse();
    }

    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"false,0", "true,0", "false,1", "true,2"})
    void aWrittenCacheReadIntoAFreshSessionContinuesExactly(boolean half, int tokenShift) throws Exception {
        ModelConfig c = TrainingPassTest.tiny(false, 1, "window:size=3+dense").withTokenShift(tokenShift);
        SplittableRandom r = new SplittableRandom(11);
        Transformer m = InferenceSessionTest.perturbed(c, 5, r, 0.2);
        InferenceOptions o = new InferenceOptions(half, 0);
        int[] doc = InferenceSessionTest.randomTokens(r, 14, c.vocabSize());
        InferenceSession written = new InferenceSession(m, 32, 4, o);
        written.feed(doc, 0, doc.length);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        assertThat(written.writeCache(Channels.newChannel(bytes))).isTrue();
        InferenceSession read = new InferenceSession(m, 32, 4, o);
        read.readCache(Channels.newChannel(new ByteArrayInputStream(bytes.toByteArray())));
        assertThat(read.length()).isEqualTo(doc.length);
        assertThat(read.feed(new int[]{3, 4}, 0, 2)).isEqualTo(written.feed(new int[]{3, 4}, 0, 2));
        InferenceSession otherShape = new InferenceSession(m, 48, 4, o);
        assertThatThrownBy(() -> otherShape.readCache(Channels.newChannel(new ByteArrayInputStream(bytes.toByteArray()))))
                .isInstanceOf(LongspanException.class).hasMessageContaining("another shape");
        // the same weights with another number of previous-token tables: another shape too
        Transformer other = new Transformer(c.withTokenShift(tokenShift == 0 ? 1 : tokenShift - 1));
        System.arraycopy(m.params, 0, other.params, 0, Math.min(m.params.length, other.params.length));
        InferenceSession mismatch = new InferenceSession(other, 32, 4, o);
        assertThatThrownBy(() -> mismatch.readCache(Channels.newChannel(new ByteArrayInputStream(bytes.toByteArray()))))
                .isInstanceOf(LongspanException.class).hasMessageContaining("another shape");
    }
}

package dev.longspan.util;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class HeapTest {
    static final long GIB = 1L << 30;

    @Test
    void workThatFitsPasses() {
        assertThatCode(() -> Heap.require(4 * GIB, 4 * GIB, 32 * GIB, "x")).doesNotThrowAnyException();
    }

    @Test
    void tooMuchSaysWhatIsNeededWhatTheHeapAllowsAndHowToRaiseIt() {
        assertThatThrownBy(() -> Heap.require(20 * GIB, 8 * GIB, 64 * GIB, "--lengths: a prompt of 4194304 tokens"))
                .isInstanceOf(LongspanException.class)
                .hasMessage("--lengths: a prompt of 4194304 tokens needs about 20.0 GiB of Java heap but the heap allows 8.0 GiB;"
                        + " raise it with LONGSPAN_HEAP=25g (or use fewer tokens)");
    }

    @Test
    void moreThanTheMachineHasSaysSo() {
        assertThatThrownBy(() -> Heap.require(100 * GIB, 8 * GIB, 16 * GIB, "x"))
                .hasMessageContaining("more than this machine's 16.0 GiB of memory").hasMessageContaining("LONGSPAN_HEAP=125g");
    }

    @Test
    void arraysBeyondJavasLimitAreRefused() {
        assertThatCode(() -> Heap.requireArray(1L << 30, "x")).doesNotThrowAnyException();
        assertThatThrownBy(() -> Heap.requireArray(3L << 30, "--lengths 1024m")).isInstanceOf(LongspanException.class)
                .hasMessageStartingWith("--lengths 1024m: one buffer would hold 3,221,225,472 values");
    }

    @Test
    void outOfMemoryLineNamesTheHeapAndTheSetting() {
        assertThat(Heap.outOfMemoryMessage()).startsWith("out of memory: the Java heap of ").contains("LONGSPAN_HEAP=").doesNotContain("\n");
    }
}

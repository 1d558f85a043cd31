package dev.longspan.util;

import java.lang.management.ManagementFactory;
import java.util.Locale;

/**
 * The Java heap's limit, and the one-line refusal of work that cannot fit in it, given before
 * anything is allocated (an {@link OutOfMemoryError} half-way through a run loses the work and
 * says nothing useful). The launcher sizes the heap; {@code LONGSPAN_HEAP} overrides it.
 */
public final class Heap {
    /** The most elements HotSpot allocates in one array (a little under Integer.MAX_VALUE). */
    public static final long MAX_ARRAY = Integer.MAX_VALUE - 16;

    private static final long GIB = 1L << 30;

    // the estimate of the last check, so that an OutOfMemoryError the estimate missed can still
    // say how much the work was thought to need
    private static volatile long lastEstimate;

    private Heap() {}

    /** The most heap this JVM will use (-Xmx): Runtime.maxMemory(). */
    public static long max() { return Runtime.getRuntime().maxMemory(); }

    /** Refuses {@code what} when it needs more than the heap allows. */
    public static void require(long bytes, String what) {
        lastEstimate = bytes;
        require(bytes, max(), physicalMemory(), what);
    }

    /** The check itself, against a given heap and physical memory (0 = unknown). */
    public static void require(long bytes, long heap, long physical, String what) {
        if (bytes <= heap) return;
        String machine = physical > 0 && bytes > physical
                ? ", more than this machine's " + format(physical) + " of memory: use fewer tokens" : "";
        throw new LongspanException(what + " needs about " + format(bytes) + " of Java heap but the heap allows " + format(heap)
                + machine + (machine.isEmpty() ? "; raise it with LONGSPAN_HEAP=" + suggestion(bytes) + " (or use fewer tokens)"
                                               : " (or raise the heap with LONGSPAN_HEAP=" + suggestion(bytes) + " on a larger machine)"));
    }

    /** Refuses {@code what} when one of its arrays would hold more elements than a Java array can. */
    public static void requireArray(long elements, String what) {
        if (elements > MAX_ARRAY || elements < 0) {
            throw new LongspanException(what + ": one buffer would hold " + String.format(Locale.ROOT, "%,d", elements)
                    + " values, more than a Java array can (2^31); use fewer tokens");
        }
    }

    /** The line printed when an allocation failed anyway. */
    public static String outOfMemoryMessage() {
        long heap = max(), est = lastEstimate;
        return "out of memory: the Java heap of " + format(heap) + " is too small for this work"
                + (est > 0 ? " (estimated at " + format(est) + ")" : "")
                + "; raise it with LONGSPAN_HEAP=" + suggestion(Math.max(est, 2 * heap)) + " (or use fewer tokens)";
    }

    /** A LONGSPAN_HEAP value a quarter above the need, in whole gigabytes. */
    static String suggestion(long bytes) {
        return Math.max(1, (long) Math.ceil(bytes * 1.25 / GIB)) + "g";
    }

    /** Bytes as MiB below a GiB, else GiB (TiB beyond), one decimal. */
    public static String format(long bytes) {
        if (bytes < GIB) return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1 << 20));
        if (bytes < 1024 * GIB) return String.format(Locale.ROOT, "%.1f GiB", bytes / (double) GIB);
        return String.format(Locale.ROOT, "%.1f TiB", bytes / (1024.0 * GIB));
    }

    private static long physicalMemory() {
        return ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os
                ? os.getTotalMemorySize() : 0;
    }
}

package dev.longspan.kernel;

import dev.longspan.util.Log;

/**
 * Chooses, once at start-up, whether kernels run their Vector API bodies or their scalar twins,
 * and says why. Scalar is chosen when the {@code jdk.incubator.vector} module is not in the boot
 * layer (the JVM was started without {@code --add-modules jdk.incubator.vector}), when the
 * preferred vector is narrower than 128 bits (no useful SIMD), or when
 * {@code -Dlongspan.kernel=scalar} forces it.
 *
 * <p>Nothing in this class touches {@code jdk.incubator.vector} directly, so it loads on any JVM;
 * the SIMD classes are only loaded when {@link #ENABLED} is true.
 */
public final class Simd {
    /** True when the Vector API bodies are used. */
    public static final boolean ENABLED;
    /** A sentence saying which implementation was chosen and why. */
    public static final String REASON;
    /** Preferred vector width in bits (0 when scalar). */
    public static final int VECTOR_BITS;

    static {
        boolean enabled = false;
        String reason;
        int bits = 0;
        String forced = System.getProperty("longspan.kernel", "").trim().toLowerCase(java.util.Locale.ROOT);
        if (forced.equals("scalar")) {
            reason = "scalar kernels: forced by -Dlongspan.kernel=scalar";
        } else if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            reason = "scalar kernels: the Vector API module is missing (start the JVM with --add-modules jdk.incubator.vector)";
        } else {
            bits = VectorWidth.preferredBits();
            if (bits < 128) {
                reason = "scalar kernels: the CPU offers no SIMD wider than " + bits + " bits";
                bits = 0;
            } else {
                enabled = true;
                reason = "Vector API kernels: " + bits + "-bit vectors (" + (bits / 32) + " floats per lane group)";
            }
        }
        if (!forced.isEmpty() && !forced.equals("scalar") && !forced.equals("vector")) {
            Log.warn("ignoring -Dlongspan.kernel=" + forced + " (use scalar or vector)");
        }
        ENABLED = enabled;
        REASON = reason;
        VECTOR_BITS = bits;
        Log.debug(reason);
    }

    private Simd() {}

    /** Isolated so that the Vector API class is loaded only after the module check. */
    private static final class VectorWidth {
        static int preferredBits() {
            return jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize();
        }
    }
}

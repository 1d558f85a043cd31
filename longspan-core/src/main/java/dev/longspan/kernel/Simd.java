package dev.longspan.kernel;

import dev.longspan.util.Log;

import java.util.Locale;

/**
 * Chooses, once at start-up, whether kernels run their Vector API bodies or their scalar twins,
 * and which register tiles they use, and says why. Scalar is chosen when the
 * {@code jdk.incubator.vector} module is not in the boot layer (the JVM was started without
 * {@code --add-modules jdk.incubator.vector}), when the preferred vector is narrower than 128 bits
 * (no useful SIMD), or when {@code -Dlongspan.kernel=scalar} forces it.
 *
 * <p>The machine shape is the vector width and the number of vector registers the JIT can
 * allocate. The register count decides the micro-kernels' register tiles ({@link Tiles}): a tile
 * whose accumulators, operands and broadcast do not fit makes C2 keep accumulators on the stack, a
 * store and a load per FMA inside the hot loop. {@code -Dlongspan.registers=16|32} forces the count.
 *
 * <p>Nothing in this class touches {@code jdk.incubator.vector} directly, so it loads on any JVM;
 * the SIMD classes are only loaded when {@link #ENABLED} is true.
 */
public final class Simd {
    /** True when the Vector API bodies are used. */
    public static final boolean ENABLED;
    /** A sentence saying which implementation was chosen and why (with the tiles when SIMD). */
    public static final String REASON;
    /** Preferred vector width in bits (0 when scalar). */
    public static final int VECTOR_BITS;
    /** Vector registers the JIT can allocate (0 when scalar). */
    public static final int VECTOR_REGISTERS;
    /** The register tiles of the GEMM and attention micro-kernels. */
    public static final Tiles TILES;

    /**
     * Register tiles of the micro-kernels, by register budget. Each tile's accumulators plus its
     * vector operands plus one broadcast fit in the registers, with one or two to spare.
     */
    public enum Tiles {
        /**
         * 32 registers (AVX-512, aarch64): GEMM 6 rows × 4 vectors (24 accumulators + 4 B vectors +
         * 1 broadcast); attention scores and P·V 4 keys (or head dimensions) × 4 query vectors (16 + 4 + 1).
         */
        WIDE("GEMM 6x4, attention 4x4"),
        /**
         * 16 registers (AVX2, AVX, SSE): GEMM 6 × 2 vectors (12 + 2 + 1); attention scores 6 keys
         * × 2 query vectors (12 + 2 + 1) and P·V 5 head dimensions × 2 query vectors (10 + 2 + up
         * to 3 broadcasts), over the query block in two halves.
         */
        NARROW("GEMM 6x2, attention 6x2 and 5x2");

        /** The tiles, as logged. */
        public final String description;

        Tiles(String description) { this.description = description; }

        /** The tiles for a register budget. */
        public static Tiles forRegisters(int registers) {
            return registers >= 32 ? WIDE : NARROW;
        }
    }

    static {
        boolean enabled = false;
        String reason;
        int bits = 0, registers = 0;
        String forced = System.getProperty("longspan.kernel", "").trim().toLowerCase(Locale.ROOT);
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
                String arch = System.getProperty("os.arch", "");
                String useAvx = isX86(arch) ? vmOption("UseAVX") : null;
                String why;
                String forcedRegisters = System.getProperty("longspan.registers", "");
                registers = forcedRegisters(forcedRegisters);
                if (registers > 0) {
                    why = "forced by -Dlongspan.registers";
                } else {
                    if (!forcedRegisters.isBlank()) Log.warn("ignoring -Dlongspan.registers=" + forcedRegisters + " (use 16 or 32)");
                    registers = vectorRegisters(arch, useAvx, bits);
                    why = useAvx != null ? "UseAVX=" + useAvx : isAarch64(arch) ? arch : "guessed from the width";
                }
                reason = "Vector API kernels: " + bits + "-bit vectors (" + (bits / 32) + " floats per lane group), "
                        + registers + " vector registers (" + why + "), tiles " + Tiles.forRegisters(registers).description;
            }
        }
        if (!forced.isEmpty() && !forced.equals("scalar") && !forced.equals("vector")) {
            Log.warn("ignoring -Dlongspan.kernel=" + forced + " (use scalar or vector)");
        }
        ENABLED = enabled;
        REASON = reason;
        VECTOR_BITS = bits;
        VECTOR_REGISTERS = registers;
        TILES = Tiles.forRegisters(registers);
        Log.debug(reason);
    }

    private Simd() {}

    /** The register count that {@code -Dlongspan.registers} forces (16 or 32), or 0 where it forces none. */
    static int forcedRegisters(String property) {
        String v = property == null ? "" : property.trim();
        return v.equals("16") || v.equals("32") ? Integer.parseInt(v) : 0;
    }

    /**
     * Vector registers C2 allocates on this machine: on x86 32 with AVX-512 (UseAVX=3: zmm0-31)
     * and 16 below it (AVX/AVX2 ymm0-15, SSE xmm0-15), whatever the vector width (UseAVX=3 with
     * MaxVectorSize=32 still has 32); 32 on aarch64 (NEON and SVE). Elsewhere, or without the
     * flag, guessed from the width: 512-bit vectors come with 32 registers on every CPU that has
     * them, and 16 is the safe guess below (a narrow tile on a wide machine costs a little speed,
     * a wide tile on a narrow one spills).
     */
    static int vectorRegisters(String arch, String useAvx, int bits) {
        if (isX86(arch) && useAvx != null) {
            try {
                return Integer.parseInt(useAvx.trim()) >= 3 ? 32 : 16;
            } catch (NumberFormatException e) {
                // fall through to the width
            }
        }
        if (isAarch64(arch)) return 32;
        return bits >= 512 ? 32 : 16;
    }

    private static boolean isX86(String arch) {
        return arch.equals("amd64") || arch.equals("x86_64") || arch.equals("x86") || arch.equals("i386");
    }

    private static boolean isAarch64(String arch) {
        return arch.equals("aarch64") || arch.equals("arm64");
    }

    /** The value the JVM settled on for a HotSpot flag; null where the flag or the management API is missing. */
    private static String vmOption(String name) {
        try {
            return java.lang.management.ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class)
                    .getVMOption(name).getValue();
        } catch (IllegalArgumentException | LinkageError | SecurityException e) {
            return null;
        }
    }

    /** Isolated so that the Vector API class is loaded only after the module check. */
    private static final class VectorWidth {
        static int preferredBits() {
            return jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize();
        }
    }
}

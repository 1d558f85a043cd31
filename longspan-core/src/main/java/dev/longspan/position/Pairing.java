package dev.longspan.position;

import dev.longspan.util.LongspanException;

import java.util.Locale;

/**
 * Which elements of a head vector form the pairs that RoPE rotates, over the first {@code rot}
 * dimensions (the rest pass through).
 *
 * <ul>
 *   <li>{@link #HALF}: pair i is (x[i], x[i + rot/2]) — Hugging Face {@code rotate_half}, GPT-NeoX,
 *       llama.cpp "NEOX" mode (qwen2, qwen3, phi3, gemma, ...).</li>
 *   <li>{@link #INTERLEAVED}: pair i is (x[2i], x[2i+1]) — original Meta Llama, llama.cpp "NORM"
 *       mode (GGUF llama: the converter permutes Hugging Face Q/K weights into this layout).</li>
 * </ul>
 * In both, pair i uses frequency theta_i. The two layouts are a fixed permutation of each other,
 * given by {@link #permutation}.
 */
public enum Pairing {
    HALF("half"),
    INTERLEAVED("interleaved");

    public final String id;

    Pairing(String id) { this.id = id; }

    public static Pairing parse(String name) {
        String n = name == null ? "" : name.trim().toLowerCase(Locale.ROOT);
        return switch (n) {
            case "half", "neox", "rotate-half", "rotate_half" -> HALF;
            case "interleaved", "norm", "normal", "meta", "gptj" -> INTERLEAVED;
            default -> throw new LongspanException("unknown RoPE pairing '" + (name == null ? "" : name.trim())
                    + "'; valid pairings: half (alias neox), interleaved (alias norm, meta)");
        };
    }

    /** Index of the first element of pair i. */
    public int first(int i, int rot) { return this == HALF ? i : 2 * i; }

    /** Index of the second element of pair i. */
    public int second(int i, int rot) { return this == HALF ? i + rot / 2 : 2 * i + 1; }

    /**
     * The permutation that converts a head vector of length dim from layout {@code from} to
     * layout {@code to}: {@code dst[j] = src[perm[j]]}. Only the first rot elements move.
     * Applied to the rows of each head of W_q and W_k it converts a checkpoint between
     * conventions (what llama.cpp's converter does for Llama).
     */
    public static int[] permutation(Pairing from, Pairing to, int dim, int rot) {
        if (rot < 0 || rot > dim || (rot & 1) != 0)
            throw new LongspanException("rotary dims must be even and in [0, " + dim + "], got " + rot);
        int[] perm = new int[dim];
        for (int j = 0; j < dim; j++) perm[j] = j;
        if (from == to) return perm;
        for (int i = 0; i < rot / 2; i++) {
            perm[to.first(i, rot)] = from.first(i, rot);
            perm[to.second(i, rot)] = from.second(i, rot);
        }
        return perm;
    }

    /**
     * Converts {@code count} head vectors of length dim (stride dim) from layout {@code from} to
     * {@code to}; src and dst must not overlap.
     */
    public static void convert(Pairing from, Pairing to, float[] src, int so, float[] dst, int dOff, int count, int dim, int rot) {
        int[] perm = permutation(from, to, dim, rot);
        for (int r = 0; r < count; r++) {
            int s = so + r * dim, d = dOff + r * dim;
            for (int j = 0; j < dim; j++) dst[d + j] = src[s + perm[j]];
        }
    }

    @Override
    public String toString() { return id; }
}

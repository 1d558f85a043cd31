package dev.longspan.attention;

/** dQ [H, N, D], dK and dV [Hkv, N, D]. */
public record AttentionGradients(float[] dq, float[] dk, float[] dv) {
}

package dev.longspan.attention;

/**
 * What the forward pass returns and the backward pass needs: O [H, N, D], the per-row
 * log-sum-exp LSE [H, N] (-inf for a row that reaches no key), and the plan with its saved state.
 */
public record AttentionResult(float[] o, float[] lse, Plan plan, int heads, int kvHeads, int length, int dim,
                              float scale, AttentionOptions options) {
}

package dev.longspan.attention;

/**
 * Options of an attention call.
 *
 * @param bidirectional   every pattern but selectmerge in its non-causal form (default: causal)
 * @param scale           logit scale; NaN means 1/sqrt(D)
 * @param detachedMerge   backward treats the LSE-merge weights between parts as constants
 *                        (torchscale's LongNet gradient); default is the exact gradient of the
 *                        joint softmax
 */
public record AttentionOptions(boolean bidirectional, float scale, boolean detachedMerge) {
    public static final AttentionOptions DEFAULT = new AttentionOptions(false, Float.NaN, false);

    public AttentionOptions withBidirectional(boolean b) { return new AttentionOptions(b, scale, detachedMerge); }
    public AttentionOptions withScale(float s) { return new AttentionOptions(bidirectional, s, detachedMerge); }
    public AttentionOptions withDetachedMerge(boolean d) { return new AttentionOptions(bidirectional, scale, d); }

    /** The scale used for head dimension d. */
    public float scaleFor(int d) {
        return Float.isNaN(scale) ? (float) (1.0 / Math.sqrt(d)) : scale;
    }
}

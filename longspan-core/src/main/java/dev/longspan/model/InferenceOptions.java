package dev.longspan.model;

/**
 * How an {@link InferenceSession} runs, beside the model itself.
 *
 * @param halfKv      keep keys and values in IEEE half precision (half the memory)
 * @param lognLength  log-length attention scaling (Qwen's {@code use_logn_attn}): a query at
 *                    position p &gt; L is scaled by ln(p)/ln(L), which keeps attention from spreading
 *                    thin over many more keys than training had; 0 turns it off
 */
public record InferenceOptions(boolean halfKv, int lognLength) {
    public static final InferenceOptions DEFAULT = new InferenceOptions(false, 0);

    /** Full-precision keys and values, and the log-n scaling the model's config asks for. */
    public static InferenceOptions forModel(ModelConfig config) {
        return new InferenceOptions(false, config.logn());
    }

    public InferenceOptions {
        if (lognLength < 0 || lognLength == 1) {
            throw new dev.longspan.util.LongspanException("log-n scaling length must be 0 (off) or at least 2, got " + lognLength);
        }
    }
}

package dev.longspan.cli;

import dev.longspan.util.LongspanException;

/** The --kv and --logn options: KV cache precision and log-n scaling. */
final class KvFlag {
    private KvFlag() {}

    /** {@code logn}: the --logn option, or null for the model config's own setting. */
    static dev.longspan.model.InferenceOptions options(String kv, Integer logn, dev.longspan.model.ModelConfig model) {
        if (logn == null) return new dev.longspan.model.InferenceOptions(half(kv), model.logn());
        if (logn < 0 || logn == 1) throw new LongspanException("--logn must be 0 (off) or at least 2, got " + logn);
        return new dev.longspan.model.InferenceOptions(half(kv), logn);
    }

    static final String LOGN_DESCRIPTION = "Log-n attention scaling beyond L tokens, 0 = off (default: the model config's logn, else 0).";

    static boolean half(String kv) {
        return switch (kv.toLowerCase(java.util.Locale.ROOT)) {
            case "f32", "fp32", "float32" -> false;
            case "f16", "fp16", "float16", "half" -> true;
            default -> throw new LongspanException("--kv: '" + kv + "' is not a KV precision (f32 or f16)");
        };
    }
}

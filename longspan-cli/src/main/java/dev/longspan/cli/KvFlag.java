package dev.longspan.cli;

import dev.longspan.util.LongspanException;

/** The --kv option: KV cache precision. */
final class KvFlag {
    private KvFlag() {}

    static dev.longspan.model.InferenceOptions options(String kv, int logn) {
        if (logn < 0 || logn == 1) throw new LongspanException("--logn must be 0 (off) or at least 2, got " + logn);
        return new dev.longspan.model.InferenceOptions(half(kv), logn);
    }

    static boolean half(String kv) {
        return switch (kv.toLowerCase(java.util.Locale.ROOT)) {
            case "f32", "fp32", "float32" -> false;
            case "f16", "fp16", "float16", "half" -> true;
            default -> throw new LongspanException("--kv: '" + kv + "' is not a KV precision (f32 or f16)");
        };
    }
}

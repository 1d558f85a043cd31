package dev.longspan.cli;

import dev.longspan.util.LongspanException;

/** The --kv option: KV cache precision. */
final class KvFlag {
    private KvFlag() {}

    static boolean half(String kv) {
        return switch (kv.toLowerCase(java.util.Locale.ROOT)) {
            case "f32", "fp32", "float32" -> false;
            case "f16", "fp16", "float16", "half" -> true;
            default -> throw new LongspanException("--kv: '" + kv + "' is not a KV precision (f32 or f16)");
        };
    }
}

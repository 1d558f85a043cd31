package dev.longspan.format;

import dev.longspan.position.RopeSpec;
import dev.longspan.util.LongspanException;

import java.util.Map;

/** Values of a foreign config (a Hugging Face config.json, GGUF metadata): numbers, possibly written as text. */
final class ConfigValues {
    private ConfigValues() {}

    @SuppressWarnings("unchecked")
    static Map<String, ?> asMap(Object o, String where) {
        if (o == null) return null;
        if (o instanceof Map<?, ?> m) return (Map<String, ?>) m;
        throw new LongspanException(where + " must be an object, got " + o);
    }

    static double number(Object o, String where) {
        if (o instanceof Number n) return n.doubleValue();
        if (o instanceof String s) return RopeSpec.parseDouble(s, where, "config");
        throw new LongspanException(where + " must be a number, got " + o);
    }

    static double requiredNumber(Object o, String where) {
        if (o == null) throw new LongspanException(where + " is required");
        return number(o, where);
    }

    static long integer(Object o, String where) {
        if (o instanceof Number n) {
            double d = n.doubleValue();
            if (d != Math.rint(d)) throw new LongspanException(where + " must be an integer, got " + o);
            return n.longValue();
        }
        if (o instanceof String s) return RopeSpec.parseLong(s, where, "config");
        throw new LongspanException(where + " must be an integer, got " + o);
    }

    static boolean bool(Object o, String where) {
        if (o instanceof Boolean b) return b;
        if (o instanceof String s) return RopeSpec.parseBool(s, where, "config");
        throw new LongspanException(where + " must be true or false, got " + o);
    }
}

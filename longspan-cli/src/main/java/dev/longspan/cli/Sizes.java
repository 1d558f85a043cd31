package dev.longspan.cli;

import dev.longspan.util.LongspanException;

import java.util.Locale;

/** Parses lengths such as 1k, 64K, 1m, 1048576 (k = 1024, m = 1024²). */
final class Sizes {
    private Sizes() {}

    static int[] parseList(String s, String option) {
        String[] parts = s.split(",");
        int[] out = new int[parts.length];
        for (int i = 0; i < parts.length; i++) out[i] = parse(parts[i].trim(), option);
        return out;
    }

    static int parse(String s, String option) {
        String t = s.toLowerCase(Locale.ROOT);
        long mul = 1;
        if (t.endsWith("k")) { mul = 1024; t = t.substring(0, t.length() - 1); }
        else if (t.endsWith("m")) { mul = 1024 * 1024; t = t.substring(0, t.length() - 1); }
        try {
            long v = Long.parseLong(t) * mul;
            if (v < 1 || v > Integer.MAX_VALUE - 16) throw new NumberFormatException();
            return (int) v;
        } catch (NumberFormatException e) {
            throw new LongspanException(option + ": '" + s + "' is not a length (e.g. 4096, 4k, 1m)");
        }
    }

    static String format(int n) {
        if (n % (1024 * 1024) == 0) return n / (1024 * 1024) + "M";
        if (n % 1024 == 0) return n / 1024 + "K";
        return Integer.toString(n);
    }
}

package dev.longspan.cli;

import java.util.Arrays;

/** min / median / max of repeated measurements. */
record Stats(double min, double median, double max) {
    static Stats of(double[] xs) {
        double[] s = xs.clone();
        Arrays.sort(s);
        int n = s.length;
        double med = n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
        return new Stats(s[0], med, s[n - 1]);
    }
}

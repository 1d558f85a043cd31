package dev.longspan.train;

import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

/**
 * Key–value recall: a list of random pairs {@code key:value;} and, at the end, one key asked
 * again ({@code ?key:}); the model must write its value. Loss counts only the answer.
 * <pre> 3f1a:90c2; 77b0:1d4e; ... ?77b0:1d4e;</pre>
 */
public final class KeyValueTask {
    private KeyValueTask() {}

    private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);

    // tokens, targets: [n+1], [n]
    public static void trainingSample(SplittableRandom rnd, int n, int[] tokens, int[] targets) {
        int pairLen = 11; // " kkkk:vvvv;"
        int pairs = Math.max(1, (n + 1 - 12) / pairLen);
        byte[][] keys = new byte[pairs][4], vals = new byte[pairs][4];
        for (int i = 0; i < pairs; i++) {
            for (int j = 0; j < 4; j++) { keys[i][j] = HEX[rnd.nextInt(16)]; vals[i][j] = HEX[rnd.nextInt(16)]; }
        }
        int ask = rnd.nextInt(pairs);
        byte[] seq = new byte[n + 1];
        int o = 0;
        int room = n + 1 - 12;
        for (int i = 0; i < pairs && o + pairLen <= room; i++) {
            seq[o++] = ' ';
            System.arraycopy(keys[i], 0, seq, o, 4); o += 4;
            seq[o++] = ':';
            System.arraycopy(vals[i], 0, seq, o, 4); o += 4;
            seq[o++] = ';';
        }
        while (o < room) seq[o++] = ' ';
        int answerFrom = o + 7; // " ?kkkk:" (7 bytes) then the value
        seq[o++] = ' ';
        seq[o++] = '?';
        System.arraycopy(keys[ask], 0, seq, o, 4); o += 4;
        seq[o++] = ':';
        System.arraycopy(vals[ask], 0, seq, o, 4); o += 4;
        seq[o] = ';';
        for (int i = 0; i <= n; i++) tokens[i] = seq[i] & 0xff;
        // an earlier pair may share the asked key: the first occurrence's value is the truth
        for (int t = 0; t < n; t++) targets[t] = t + 1 >= answerFrom ? tokens[t + 1] : -1;
        for (int i = 0; i < ask; i++) {
            if (java.util.Arrays.equals(keys[i], keys[ask])) { // ambiguous question: do not train on it
                java.util.Arrays.fill(targets, -1);
                break;
            }
        }
    }
}

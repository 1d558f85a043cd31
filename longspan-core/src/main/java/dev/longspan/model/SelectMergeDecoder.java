package dev.longspan.model;

import dev.longspan.attention.Pattern;

import java.util.Arrays;

/**
 * Select-and-merge for incremental inference. The KV cache keeps every key; this keeps, per
 * region of R tokens, the sum of its (rotated) keys per KV head and of its queries per head, so
 * that region means are at hand. A query at position p of group g (regions T+gM .. T+gM+M−1)
 * uses the engine's rule with the regions the group has so far: each member region a ≤ p/R ranks
 * the complete regions b ≤ a−M by dot(mean q_a, mean k_b) (ties to the lower index), candidates are
 * merged rank by rank across members, de-duplicated, the first T−M kept; keys are those regions in
 * full plus the group's own tokens up to p. The first T·R positions attend causally in full.
 *
 * <p>For the last position of a prefix this is exactly what the attention engine computes on that
 * prefix (a partial last group and region included); earlier positions of a group saw fewer of the
 * group's queries than a whole-sequence forward would give them — decoding is causal.
 */
final class SelectMergeDecoder {
    final int region, top, merge, pick, heads, kvHeads, d;
    private float[] qSum, kSum;     // [heads][regions][d], [kvHeads][regions][d]
    private int[] qCount, kCount;   // per region (same for every head)
    private int regions;

    SelectMergeDecoder(Pattern.SelectMerge p, int heads, int kvHeads, int d) {
        this.region = p.region();
        this.top = p.top();
        this.merge = p.merge();
        this.pick = top - merge;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.d = d;
        grow(16);
    }

    private void grow(int need) {
        if (need <= regions) return;
        int r = Math.max(need, regions * 2);
        float[] nq = new float[heads * r * d], nk = new float[kvHeads * r * d];
        for (int h = 0; h < heads; h++) if (qSum != null) System.arraycopy(qSum, h * regions * d, nq, h * r * d, regions * d);
        for (int h = 0; h < kvHeads; h++) if (kSum != null) System.arraycopy(kSum, h * regions * d, nk, h * r * d, regions * d);
        qSum = nq;
        kSum = nk;
        qCount = qCount == null ? new int[r] : Arrays.copyOf(qCount, r);
        kCount = kCount == null ? new int[r] : Arrays.copyOf(kCount, r);
        regions = r;
    }

    /** Adds a chunk: q [H, T, D] and k [Hkv, T, D] (rotated) at positions start..start+T−1. */
    void observe(float[] q, float[] k, int start, int T) {
        grow((start + T) / region + 1);
        for (int t = 0; t < T; t++) {
            int a = (start + t) / region;
            qCount[a]++;
            kCount[a]++;
            for (int h = 0; h < heads; h++) {
                int o = (h * regions + a) * d, x = (h * T + t) * d;
                for (int c = 0; c < d; c++) qSum[o + c] += q[x + c];
            }
            for (int h = 0; h < kvHeads; h++) {
                int o = (h * regions + a) * d, x = (h * T + t) * d;
                for (int c = 0; c < d; c++) kSum[o + c] += k[x + c];
            }
        }
    }

    /** Appends the key positions query p of head h reaches; returns the new count. */
    int keys(long pos, int h, int[] keys, int n) {
        int p = (int) pos;
        if (p < (long) top * region) {
            for (int k = 0; k <= p; k++) keys[n++] = k;
            return n;
        }
        int ap = p / region;
        int g = (ap - top) / merge, a0 = top + g * merge;
        int kvh = h / (heads / kvHeads);
        int members = ap - a0 + 1;
        int[][] ranked = new int[members][];
        for (int i = 0; i < members; i++) ranked[i] = rank(h, kvh, a0 + i);
        boolean[] seen = new boolean[ap + 1];
        int[] chosen = new int[pick];
        int c = 0;
        for (int r = 0; r < pick && c < pick; r++)
            for (int i = 0; i < members && c < pick; i++) {
                if (r >= ranked[i].length) continue;
                int b = ranked[i][r];
                if (seen[b]) continue;
                seen[b] = true;
                chosen[c++] = b;
            }
        Arrays.sort(chosen, 0, c);
        for (int i = 0; i < c; i++) for (int k = chosen[i] * region, e = k + region; k < e; k++) keys[n++] = k;
        for (int k = a0 * region; k <= p; k++) keys[n++] = k;
        return n;
    }

    // member region a of head h: the best `pick` regions b ≤ a − M by dot(mean q_a, mean k_b), best first
    private int[] rank(int h, int kvh, int a) {
        int last = a - merge;
        if (last < 0) return new int[0];
        float[] scores = new float[last + 1];
        int qo = (h * regions + a) * d;
        float qi = 1f / qCount[a];
        for (int b = 0; b <= last; b++) {
            int ko = (kvh * regions + b) * d;
            float kinv = 1f / kCount[b];
            float s = 0f;
            for (int c2 = 0; c2 < d; c2++) s += (qSum[qo + c2] * qi) * (kSum[ko + c2] * kinv);
            scores[b] = s;
        }
        Integer[] order = new Integer[last + 1];
        for (int b = 0; b <= last; b++) order[b] = b;
        Arrays.sort(order, (x, y) -> scores[x] != scores[y] ? Float.compare(scores[y], scores[x]) : Integer.compare(x, y));
        int m = Math.min(pick, last + 1);
        int[] out = new int[m];
        for (int i = 0; i < m; i++) out[i] = order[i];
        return out;
    }

    /** Most keys one query can reach at context length n. */
    int maxKeys(int n) { return Math.max(Math.min(n, top * region), pick * region + merge * region); }
}

package dev.longspan.position;

import dev.longspan.util.LongspanException;

import java.util.SplittableRandom;

/**
 * CRD-NTK ("cyclic, randomly truncated, dynamically growing NTK"), the position augmentation of
 * select-and-merge attention fine-tuning (ALGORITHMS.md §4.7). Every knob lives in a
 * {@link RopeConfig} of kind crd-ntk; the rotation itself is a {@link Rope} of that config, which
 * applies the NTK base and wraps positions modulo the period.
 *
 * <p><b>Training rule</b> (step t, sequence index j, length n):
 * <pre>
 *   P(t)   = min(offset_max, offset * 2^floor(t / grow))      // grow = 0: P(t) = offset; offset_max = 0: no cap
 *   off    = uniform integer in [0, P(t))                      // 0 when P(t) ≤ 1
 *            drawn from SplittableRandom(mix(seed, t, j))      // reproducible, independent of call order
 *   pos[i] = (off + i) mod period   (period > 0)   else off + i
 *   rotate with base' = base * factor^(d/(d-2))   (ntk=static)
 *            or the dynamic form with L_cur = max(pos)+1, L_train = orig   (ntk=dynamic)
 * </pre>
 * <b>Growing NTK factor</b> (the draft's trainer variant, optional, {@link FactorGrowth}): the factor
 * of step t is {@code s(t) = min(max, s0 · 2^floor(t / every))} and the rotation of that step uses
 * it in place of the config's s0 ({@link #configAt}); the model then runs at inference with the
 * factor of its last training step.
 * <b>Inference rule</b> (deterministic): positions phase..phase+N-1 (or the cache position of each
 * token plus the phase), wrapped modulo the period when period > 0, the same base' rule;
 * {@link #inferencePositions} spells it out. The phase is 0, or, for generation, the one
 * {@link #inferencePhase} gives for the prompt's length: the wrap is a discontinuity in relative
 * positions (a key just before it and a query just after it are a period apart), which training
 * meets at random places; at inference it is put a quarter period after the prompt's end and three
 * quarters before it, so that the question and the first tokens of the answer are never split by
 * it (measured: at prompt lengths that are multiples of 256 — every length of a passkey grid — the
 * answer started at position 0 of a cycle and the bundled model miscopied 5–15 % of keys that it
 * copied without a miss at lengths 1000 and 2000).
 */
public final class CrdNtk {
    private final RopeConfig cfg;

    public CrdNtk(RopeConfig cfg) {
        if (cfg.kind() != RopeKind.CRD_NTK) throw new LongspanException("CrdNtk needs a RoPE config of kind crd-ntk, got " + cfg.kind());
        this.cfg = cfg;
    }

    public RopeConfig config() { return cfg; }

    /** The rotation that goes with these positions (NTK base, wrapping modulo the period). */
    public Rope rope() { return new Rope(cfg); }

    /** P(t): the offset range at a training step (offsets are drawn from [0, P(t))). */
    public long offsetRange(long step) {
        if (step < 0) throw new LongspanException("CRD-NTK step must not be negative, got " + step);
        long p = cfg.offsetRange();
        long cap = cfg.offsetMax() > 0 ? cfg.offsetMax() : Long.MAX_VALUE;
        if (p == 0) return 0;
        if (cfg.growSteps() > 0) {
            long doublings = step / cfg.growSteps();
            // saturate instead of overflowing: 2^62 positions is beyond any use
            p = doublings >= Long.numberOfLeadingZeros(p) ? Long.MAX_VALUE : p << doublings;
        }
        return Math.min(p, cap);
    }

    /** The random offset of sequence {@code seq} at training step {@code step}. */
    public long offset(long step, long seq) {
        long range = offsetRange(step);
        if (range <= 1) return 0;
        return rng(step, seq).nextLong(range);
    }

    /** Positions of a training sequence of length n: (offset + i) mod period. */
    public long[] trainingPositions(long step, long seq, int n) {
        long off = offset(step, seq);
        long[] pos = new long[n];
        for (int i = 0; i < n; i++) pos[i] = wrap(off + i);
        return pos;
    }

    /** Positions at inference for tokens start..start+n-1 after the given phase, wrapped modulo the period. */
    public long[] inferencePositions(long phase, long start, int n) {
        long[] pos = new long[n];
        for (int i = 0; i < n; i++) pos[i] = wrap(phase + start + i);
        return pos;
    }

    /**
     * The phase for generating after a prompt of {@code promptLength} tokens: the prompt's last token
     * at position 3/4·period − 1 of its cycle, so the wrap lies period/4 tokens into the answer and
     * 3/4·period tokens back in the prompt. 0 for any RoPE but a cyclic crd-ntk one (positions of
     * other kinds are absolute and never shifted).
     */
    public static long inferencePhase(RopeConfig cfg, int promptLength) {
        if (cfg.kind() != RopeKind.CRD_NTK || cfg.period() <= 0) return 0;
        long p = cfg.period();
        return Math.floorMod(p - p / 4 - (long) promptLength, p);
    }

    /**
     * Dynamic growth of the NTK factor during training: it doubles every {@code every} steps up to
     * {@code max} (the factor of the config is where it starts).
     */
    public record FactorGrowth(long every, double max) {
        public FactorGrowth {
            if (every < 1) throw new LongspanException("CRD-NTK factor growth: 'factor_grow' must be at least 1 (steps between doublings), got " + every);
            if (!(max > 0) || !Double.isFinite(max)) throw new LongspanException("CRD-NTK factor growth: 'factor_max' must be a finite number > 0, got " + max);
        }
    }

    /** s(t): the NTK factor of a training step under {@code growth} (the config's factor when null). */
    public double factorAt(long step, FactorGrowth growth) {
        if (step < 0) throw new LongspanException("CRD-NTK step must not be negative, got " + step);
        double s = cfg.factor();
        if (growth == null) return s;
        // 2^doublings overflows to infinity long after the cap is reached: min() still gives the cap
        return Math.min(growth.max(), s * Math.pow(2, step / growth.every()));
    }

    /** The RoPE config of a training step: this one with the NTK factor of that step. */
    public RopeConfig configAt(long step, FactorGrowth growth) {
        double s = factorAt(step, growth);
        return s == cfg.factor() ? cfg : cfg.toBuilder().factor(s).build();
    }

    private long wrap(long p) { return cfg.period() > 0 ? Math.floorMod(p, cfg.period()) : p; }

    // one stream per (seed, step, seq): a SplitMix-style mix so that neighbouring steps and
    // sequences are unrelated and the draw does not depend on how many were made before
    private SplittableRandom rng(long step, long seq) {
        long h = mix(cfg.seed() ^ 0x9E3779B97F4A7C15L);
        h = mix(h ^ step);
        h = mix(h ^ (seq * 0xC2B2AE3D27D4EB4FL));
        return new SplittableRandom(h);
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}

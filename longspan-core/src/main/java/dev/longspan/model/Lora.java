package dev.longspan.model;

import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * LoRA adapters (Hu et al.; Hugging Face PEFT's layout) on a {@link Transformer}'s linear layers:
 * each targeted matrix W [out, in] of each layer gets A [r, in] and B [out, r] and computes
 * W x + (alpha / r)·B(A x) ({@link Weight.Adapted}). Every A and B lives in one flat array,
 * {@link #weights}, in layer order and within a layer in {@link Target} order, A before B.
 * Matrices are in the model's row order, which is Hugging Face's for every format Longspan reads
 * (a GGUF's permuted Q/K rows are read back into it), so the tensors are PEFT's as they are.
 */
public final class Lora {

    /** The linear layers an adapter can sit on, by their short name (a CLI flag) and PEFT module name. */
    public enum Target {
        Q("q", "self_attn.q_proj"), K("k", "self_attn.k_proj"), V("v", "self_attn.v_proj"), O("o", "self_attn.o_proj"),
        GATE("gate", "mlp.gate_proj"), UP("up", "mlp.up_proj"), DOWN("down", "mlp.down_proj");

        public final String flag;
        /** The module path inside a layer, e.g. {@code self_attn.q_proj}. */
        public final String module;

        Target(String flag, String module) {
            this.flag = flag;
            this.module = module;
        }

        /** PEFT's target_modules entry: the last part of the module path ({@code q_proj}). */
        public String peftName() { return module.substring(module.indexOf('.') + 1); }

        public static Target byFlag(String s, String what) {
            for (Target t : values()) if (t.flag.equals(s.trim().toLowerCase(Locale.ROOT))) return t;
            throw new LongspanException(what + ": unknown target '" + s + "' (q, k, v, o, gate, up, down)");
        }

        public static Target byPeftName(String s) {
            for (Target t : values()) if (t.peftName().equals(s)) return t;
            return null;
        }

        Weight base(Transformer m, int l) {
            return switch (this) {
                case Q -> m.qProj[l];
                case K -> m.kProj[l];
                case V -> m.vProj[l];
                case O -> m.oProj[l];
                case GATE -> m.gateProj[l];
                case UP -> m.upProj[l];
                case DOWN -> m.downProj[l];
            };
        }
    }

    /** Rank r, alpha (the scaling is alpha / r, as PEFT's without rsLoRA) and the targeted layers. */
    public record Spec(int rank, double alpha, Set<Target> targets) {
        public Spec {
            if (rank < 1) throw new LongspanException("LoRA rank must be at least 1, got " + rank);
            if (!(alpha > 0) || Double.isInfinite(alpha)) throw new LongspanException("LoRA alpha must be a positive number, got " + alpha);
            if (targets.isEmpty()) throw new LongspanException("LoRA needs at least one target layer");
            targets = Set.copyOf(EnumSet.copyOf(targets));
        }

        public float scale() { return (float) (alpha / rank); }
    }

    /** One adapter: layer, target, W's shape [out, in] and where A and B start in {@link #weights}. */
    public record Adapter(int layer, Target target, int out, int in, int aOff, int bOff) {
        /** Its module's name in the model, e.g. {@code model.layers.3.self_attn.q_proj}. */
        public String module() { return "model.layers." + layer + "." + target.module; }
    }

    public final Spec spec;
    public final float scale;
    /** Every A and B; may be longer than {@link #size()} (a trainer keeps more trained values after them). */
    public final float[] weights;
    private final List<Adapter> adapters;
    private final int size;

    /** Adapters for model config c over {@code weights} (at least {@link #size(ModelConfig, Spec)} long), values as they are. */
    public Lora(ModelConfig c, Spec spec, float[] weights) {
        this.spec = spec;
        this.scale = spec.scale();
        List<Adapter> list = new ArrayList<>();
        int off = 0;
        for (int l = 0; l < c.layers(); l++) {
            for (Target t : Target.values()) {
                if (!spec.targets().contains(t)) continue;
                int[] shape = shape(c, t);
                int a = off, b = a + spec.rank() * shape[1];
                off = b + shape[0] * spec.rank();
                list.add(new Adapter(l, t, shape[0], shape[1], a, b));
            }
        }
        this.adapters = List.copyOf(list);
        this.size = off;
        if (weights.length < size) throw new IllegalArgumentException("adapter array of " + weights.length + " for " + size + " values");
        this.weights = weights;
    }

    /** Floats every adapter of a spec on a config takes together. */
    public static int size(ModelConfig c, Spec spec) {
        long n = 0;
        for (Target t : spec.targets()) {
            int[] s = shape(c, t);
            n += (long) spec.rank() * (s[0] + s[1]);
        }
        n *= c.layers();
        if (n > Integer.MAX_VALUE - 16) throw new LongspanException("LoRA rank " + spec.rank() + " gives " + n + " adapter values, more than one array holds");
        return (int) n;
    }

    // [out, in] of a target's matrix
    static int[] shape(ModelConfig c, Target t) {
        return switch (t) {
            case Q -> new int[]{c.qDim(), c.dim()};
            case K, V -> new int[]{c.kvDim(), c.dim()};
            case O -> new int[]{c.dim(), c.qDim()};
            case GATE, UP -> new int[]{c.ffnDim(), c.dim()};
            case DOWN -> new int[]{c.dim(), c.ffnDim()};
        };
    }

    public List<Adapter> adapters() { return adapters; }

    /** The adapter of a layer and target; null when that layer is not targeted. */
    public Adapter adapter(int layer, Target t) {
        for (Adapter a : adapters) if (a.layer() == layer && a.target() == t) return a;
        return null;
    }

    /** Floats the adapters take (the start of {@link #weights}). */
    public int size() { return size; }

    /**
     * PEFT's initialisation: A as torch's kaiming_uniform_(a=√5), uniform on ±1/√in, seeded; B zero,
     * so that a fresh adapter leaves the model's output unchanged.
     */
    public void initialize(long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        for (Adapter a : adapters) {
            double bound = 1 / Math.sqrt(a.in());
            for (int i = 0; i < spec.rank() * a.in(); i++) weights[a.aOff() + i] = (float) ((rnd.nextDouble() * 2 - 1) * bound);
            java.util.Arrays.fill(weights, a.bOff(), a.bOff() + a.out() * spec.rank(), 0f);
        }
    }

    /** The base matrix of an adapter with the adapter on it. */
    Weight wrap(Weight base, Adapter a) {
        return new Weight.Adapted(base, weights, a.aOff(), a.bOff(), spec.rank(), scale);
    }

    /**
     * W + s·B·A of one adapter over dense parameters (merging for export): params[wOff ..] [out, in]
     * gets the product added.
     */
    public void mergeInto(Adapter a, float[] params, int wOff) {
        int r = spec.rank();
        for (int o = 0; o < a.out(); o++) {
            for (int j = 0; j < r; j++) {
                dev.longspan.kernel.Kernels.axpy(scale * weights[a.bOff() + o * r + j], weights, a.aOff() + j * a.in(), params, wOff + o * a.in(), a.in());
            }
        }
    }
}

package dev.longspan.train;

import dev.longspan.model.ModelConfig;
import dev.longspan.position.CrdNtk;
import dev.longspan.position.RopeKind;
import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A training run: the model and the optimisation, from the JSON given to {@code longspan train}:
 * <pre>{"model": {...ModelConfig...}, "train": {"seq_len": 512, "batch": 4, "steps": 1000, ...}}</pre>
 * {@code curriculum} is a list of [step, seq_len] pairs: from that step on, sequences have that
 * length (seq_len is the longest, the buffers are sized for it). {@code synthetic} mixes passkey
 * and key–value samples at the given rates; their haystacks are the standard filler, or, with
 * {@code real_filler}, text of the training data for half of them, and with {@code text_filler}
 * (see {@link TextFiller}) the given share comes from other text files; {@code numbers} writes about that many
 * decoy numbers per 1,000 haystack bytes over every passkey haystack ({@link PasskeyTask.Filler#withNumbers}) and
 * {@code technical} that many snippets of numbers in the shapes of manuals and release notes
 * ({@link PasskeyTask.Filler#withTechnical}); {@code near_miss} writes that many copies of the key with
 * one digit changed over each passkey haystack, {@code marks} that many fenced digits per 1,000
 * bytes ({@link PasskeyTask.Filler#withMarks}), {@code tables} covers that share (0–1) of each passkey haystack
 * with tables of numbers ({@link PasskeyTask.Filler#withTables}). {@code crd_ntk}
 * {@code {"factor_grow": G, "factor_max": F}} doubles the NTK factor of a crd-ntk model's RoPE every
 * G steps up to F ({@link CrdNtk.FactorGrowth}; the other CRD-NTK parts, cyclic wrap, random
 * offsets and their growing range, are knobs of the RoPE spec). {@code configSteps} is the file's train.steps (steps
 * differs from it when {@code --steps} overrode it): a checkpoint remembers both, so that resuming
 * with the same file keeps the run's schedule.
 */
public record TrainConfig(ModelConfig model, int seqLen, int batch, int steps, double lr, double minLr, int warmup,
                          double weightDecay, double beta1, double beta2, double eps, double clip,
                          int evalEvery, int evalWindows, int checkpointEvery, long seed, double heldOut,
                          boolean recompute, List<int[]> curriculum, double passkeyRate, double kvRate,
                          boolean realFiller, TextFiller textFiller, double decoyNumbers, double technicalNumbers, int nearMisses, double marks, double tables, String positions, CrdNtk.FactorGrowth factorGrowth,
                          int configSteps) {

    /**
     * {@code train.synthetic.text_filler}: {@code {"files": [paths], "held_out": path, "share": 0.5}}.
     * That share of the passkey samples takes its haystack from the files (a directory stands for
     * its *.txt files), never from the held-out file, which the config names so that the recipe
     * says which text the model never saw. Relative paths are read from the working directory,
     * like {@code --data}. Null when absent.
     */
    public record TextFiller(List<String> files, String heldOut, double share) {
        public Map<String, Object> toJson() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("files", List.copyOf(files));
            m.put("held_out", heldOut);
            m.put("share", share);
            return m;
        }
    }

    private static final Set<String> TRAIN_KEYS = Set.of("seq_len", "batch", "steps", "lr", "min_lr", "warmup",
            "weight_decay", "beta1", "beta2", "eps", "clip", "eval_every", "eval_windows", "checkpoint_every", "seed",
            "held_out", "recompute", "curriculum", "synthetic", "positions", "crd_ntk");

    /** Key of {@link #configSteps} in a checkpoint's train config (written only when --steps overrode it). */
    public static final String CONFIG_STEPS = "config_steps";

    /** Sequence length at a step (the curriculum, else seq_len). */
    public int seqLenAt(long step) {
        int n = seqLen;
        for (int[] c : curriculum) if (step >= c[0]) n = c[1];
        return n;
    }

    public static TrainConfig fromJson(Map<String, Object> root, String src) {
        if (!(root.get("model") instanceof Map<?, ?> mm)) throw new LongspanException(src + ": missing object 'model'");
        if (!(root.get("train") instanceof Map<?, ?> tm)) throw new LongspanException(src + ": missing object 'train'");
        for (String k : root.keySet()) {
            if (!k.equals("model") && !k.equals("train") && !k.startsWith("_")) throw new LongspanException(src + ": unknown top-level field '" + k + "' (model, train)");
        }
        @SuppressWarnings("unchecked") Map<String, Object> t = (Map<String, Object>) tm;
        @SuppressWarnings("unchecked") ModelConfig model = ModelConfig.fromJson((Map<String, Object>) mm, src + ": model");
        for (String k : t.keySet()) {
            if (!TRAIN_KEYS.contains(k) && !k.startsWith("_")) {
                throw new LongspanException(src + ": unknown field 'train." + k + "' (known: " + String.join(", ", new java.util.TreeSet<>(TRAIN_KEYS)) + ")");
            }
        }
        String f = src + ": train.";
        int seqLen = i(t, "seq_len", 256, f);
        List<int[]> cur = new ArrayList<>();
        if (t.get("curriculum") instanceof List<?> cl) {
            for (Object o : cl) {
                if (!(o instanceof List<?> pair) || pair.size() != 2 || !(pair.get(0) instanceof Long s) || !(pair.get(1) instanceof Long n)) {
                    throw new LongspanException(f + "curriculum: expected [[step, seq_len], ...], got " + o);
                }
                if (n < 2 || n > seqLen) throw new LongspanException(f + "curriculum: seq_len " + n + " must be between 2 and seq_len " + seqLen);
                cur.add(new int[]{(int) (long) s, (int) (long) n});
            }
        } else if (t.containsKey("curriculum")) {
            throw new LongspanException(f + "curriculum: expected a list of [step, seq_len]");
        }
        double pk = 0, kv = 0;
        boolean realFiller = false;
        TextFiller textFiller = null;
        double numbers = 0, technical = 0, marks = 0, tables = 0;
        int nearMiss = 0;
        if (t.get("synthetic") instanceof Map<?, ?> sm) {
            pk = sm.get("passkey") instanceof Number n ? n.doubleValue() : 0;
            kv = sm.get("kv") instanceof Number n ? n.doubleValue() : 0;
            realFiller = sm.get("real_filler") instanceof Boolean b && b;
            if (pk < 0 || kv < 0 || pk + kv > 1) throw new LongspanException(f + "synthetic: passkey and kv rates must be ≥ 0 and sum to ≤ 1");
            for (Object k : sm.keySet()) {
                if (!SYNTHETIC_KEYS.contains(k)) throw new LongspanException(f + "synthetic: unknown field '" + k + "' (known: " + String.join(", ", SYNTHETIC_KEYS) + ")");
            }
            if (sm.containsKey("text_filler")) textFiller = textFiller(sm.get("text_filler"), f + "synthetic.text_filler");
            numbers = perKb(sm, "numbers", "decoy numbers", f);
            if (sm.containsKey("near_miss")) {
                nearMiss = sm.get("near_miss") instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue()) ? n.intValue() : -1;
                if (nearMiss < 0 || nearMiss > 1000) {
                    throw new LongspanException(f + "synthetic.near_miss: copies of the key with one digit changed per haystack must be a whole number in [0, 1000], got " + sm.get("near_miss"));
                }
            }
            marks = perKb(sm, "marks", "fenced digits", f);
            technical = perKb(sm, "technical", "snippets of technical numbers", f);
            if (sm.containsKey("tables")) {
                tables = sm.get("tables") instanceof Number n ? n.doubleValue() : Double.NaN;
                if (!(tables >= 0 && tables <= 1)) {
                    throw new LongspanException(f + "synthetic.tables: the share of each passkey haystack covered by tables of numbers must be a number in [0, 1], got " + sm.get("tables"));
                }
            }
        } else if (t.containsKey("synthetic")) {
            throw new LongspanException(f + "synthetic: expected an object {\"passkey\": rate, ...}");
        }
        CrdNtk.FactorGrowth growth = t.containsKey("crd_ntk") ? factorGrowth(t.get("crd_ntk"), model, f + "crd_ntk") : null;
        TrainConfig c = new TrainConfig(model, seqLen, i(t, "batch", 1, f), i(t, "steps", 100, f),
                d(t, "lr", 1e-3, f), d(t, "min_lr", 1e-4, f), i(t, "warmup", 10, f),
                d(t, "weight_decay", 0.1, f), d(t, "beta1", 0.9, f), d(t, "beta2", 0.95, f), d(t, "eps", 1e-8, f),
                d(t, "clip", 1.0, f), i(t, "eval_every", 50, f), i(t, "eval_windows", 8, f), i(t, "checkpoint_every", 50, f),
                (long) d(t, "seed", 1, f), d(t, "held_out", 0.05, f), t.get("recompute") instanceof Boolean b && b,
                cur, pk, kv, realFiller, textFiller, numbers, technical, nearMiss, marks, tables, t.get("positions") instanceof String p ? p : "sequential", growth, i(t, "steps", 100, f));
        if (c.seqLen < 2) throw new LongspanException(f + "seq_len must be at least 2");
        if (c.batch < 1) throw new LongspanException(f + "batch must be at least 1");
        if (c.steps < 1) throw new LongspanException(f + "steps must be at least 1");
        if (!(c.lr > 0)) throw new LongspanException(f + "lr must be positive");
        if (!(c.minLr >= 0 && c.minLr <= c.lr)) throw new LongspanException(f + "min_lr must be between 0 and lr (" + c.lr + "), got " + c.minLr);
        if (c.warmup < 0) throw new LongspanException(f + "warmup must be ≥ 0, got " + c.warmup);
        // 0 would mean "never" through a modulo by zero or a silent skip: a number of steps is expected
        if (c.evalEvery < 1) throw new LongspanException(f + "eval_every must be at least 1 (steps between evaluations), got " + c.evalEvery);
        if (c.evalWindows < 1) throw new LongspanException(f + "eval_windows must be at least 1, got " + c.evalWindows);
        if (c.checkpointEvery < 1) throw new LongspanException(f + "checkpoint_every must be at least 1 (steps between checkpoints), got " + c.checkpointEvery);
        if (!(c.clip > 0)) throw new LongspanException(f + "clip must be positive, got " + c.clip);
        if (!(c.heldOut >= 0 && c.heldOut < 1)) throw new LongspanException(f + "held_out must be in [0, 1), got " + c.heldOut);
        return c;
    }

    public TrainConfig withSteps(int s) {
        return new TrainConfig(model, seqLen, batch, s, lr, minLr, warmup, weightDecay, beta1, beta2, eps, clip, evalEvery,
                evalWindows, checkpointEvery, seed, heldOut, recompute, curriculum, passkeyRate, kvRate, realFiller, textFiller, decoyNumbers, technicalNumbers, nearMisses, marks, tables, positions, factorGrowth, configSteps);
    }

    private static final List<String> SYNTHETIC_KEYS = List.of("passkey", "kv", "real_filler", "text_filler", "numbers", "technical", "near_miss", "marks", "tables");

    // an optional rate per 1,000 haystack bytes of train.synthetic, in [0, 100] (0 when absent)
    private static double perKb(Map<?, ?> sm, String key, String what, String f) {
        if (!sm.containsKey(key)) return 0;
        double v = sm.get(key) instanceof Number n ? n.doubleValue() : Double.NaN;
        if (!(v >= 0 && v <= 100)) {
            throw new LongspanException(f + "synthetic." + key + ": " + what + " per 1,000 haystack bytes must be a number in [0, 100], got " + sm.get(key));
        }
        return v;
    }

    private static TextFiller textFiller(Object o, String f) {
        if (!(o instanceof Map<?, ?> m)) throw new LongspanException(f + ": expected an object {\"files\": [...], \"held_out\": FILE, \"share\": rate}");
        for (Object k : m.keySet()) {
            if (!List.of("files", "held_out", "share").contains(k)) throw new LongspanException(f + ": unknown field '" + k + "' (known: files, held_out, share)");
        }
        List<String> files = new ArrayList<>();
        if (m.get("files") instanceof List<?> l && !l.isEmpty()) {
            for (Object x : l) {
                if (!(x instanceof String s) || s.isBlank()) throw new LongspanException(f + ".files: expected paths (strings), got " + x);
                files.add(s);
            }
        } else {
            throw new LongspanException(f + ".files: expected a non-empty list of text files or directories");
        }
        if (!(m.get("held_out") instanceof String held) || held.isBlank()) {
            throw new LongspanException(f + ".held_out: expected the path of the text file kept out of training");
        }
        double share = m.get("share") == null ? 1.0 : m.get("share") instanceof Number n ? n.doubleValue() : Double.NaN;
        if (!(share > 0 && share <= 1)) throw new LongspanException(f + ".share: must be a number in (0, 1], got " + m.get("share"));
        return new TextFiller(files, held, share);
    }

    private static CrdNtk.FactorGrowth factorGrowth(Object o, ModelConfig model, String f) {
        if (!(o instanceof Map<?, ?> m)) throw new LongspanException(f + ": expected an object {\"factor_grow\": steps, \"factor_max\": F}");
        for (Object k : m.keySet()) {
            if (!List.of("factor_grow", "factor_max").contains(k)) throw new LongspanException(f + ": unknown field '" + k + "' (known: factor_grow, factor_max)");
        }
        if (model.rope().kind() != RopeKind.CRD_NTK) {
            throw new LongspanException(f + ": needs a model rope of kind crd-ntk, got " + model.rope().kind());
        }
        if (!(m.get("factor_grow") instanceof Long g)) throw new LongspanException(f + ".factor_grow: expected an integer number of steps, got " + m.get("factor_grow"));
        if (!(m.get("factor_max") instanceof Number mx)) throw new LongspanException(f + ".factor_max: expected a number, got " + m.get("factor_max"));
        if (mx.doubleValue() < model.rope().factor()) {
            throw new LongspanException(f + ".factor_max: " + mx + " is below the rope's factor " + model.rope().factor() + " (where the growth starts)");
        }
        try {
            return new CrdNtk.FactorGrowth(g, mx.doubleValue());
        } catch (LongspanException e) {
            throw new LongspanException(f + ": " + e.getMessage());
        }
    }

    private static int i(Map<String, Object> t, String k, int dflt, String f) {
        Object v = t.get(k);
        if (v == null) return dflt;
        if (v instanceof Long l && l == (int) (long) l) return (int) (long) l;
        throw new LongspanException(f + k + " must be an integer, got " + v);
    }

    private static double d(Map<String, Object> t, String k, double dflt, String f) {
        Object v = t.get(k);
        if (v == null) return dflt;
        if (v instanceof Number n) return n.doubleValue();
        throw new LongspanException(f + k + " must be a number, got " + v);
    }

    public Map<String, Object> toJson() {
        Map<String, Object> t = new LinkedHashMap<>();
        t.put("seq_len", (long) seqLen); t.put("batch", (long) batch); t.put("steps", (long) steps);
        if (configSteps != steps) t.put(CONFIG_STEPS, (long) configSteps);
        t.put("lr", lr); t.put("min_lr", minLr); t.put("warmup", (long) warmup); t.put("weight_decay", weightDecay);
        t.put("beta1", beta1); t.put("beta2", beta2); t.put("eps", eps); t.put("clip", clip);
        t.put("eval_every", (long) evalEvery); t.put("eval_windows", (long) evalWindows);
        t.put("checkpoint_every", (long) checkpointEvery); t.put("seed", seed); t.put("held_out", heldOut);
        t.put("recompute", recompute);
        List<Object> cl = new ArrayList<>();
        for (int[] c : curriculum) cl.add(List.of((long) c[0], (long) c[1]));
        t.put("curriculum", cl);
        Map<String, Object> syn = new LinkedHashMap<>();
        syn.put("passkey", passkeyRate); syn.put("kv", kvRate); syn.put("real_filler", realFiller);
        if (textFiller != null) syn.put("text_filler", textFiller.toJson());
        if (decoyNumbers > 0) syn.put("numbers", decoyNumbers);
        if (technicalNumbers > 0) syn.put("technical", technicalNumbers);
        if (nearMisses > 0) syn.put("near_miss", (long) nearMisses);
        if (marks > 0) syn.put("marks", marks);
        if (tables > 0) syn.put("tables", tables);
        t.put("synthetic", syn);
        t.put("positions", positions);
        if (factorGrowth != null) {
            Map<String, Object> g = new LinkedHashMap<>();
            g.put("factor_grow", factorGrowth.every());
            g.put("factor_max", factorGrowth.max());
            t.put("crd_ntk", g);
        }
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("model", model.toJson());
        root.put("train", t);
        return root;
    }
}

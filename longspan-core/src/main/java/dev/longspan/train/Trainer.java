package dev.longspan.train;

import dev.longspan.format.LongspanFormat;
import dev.longspan.io.AtomicFiles;
import dev.longspan.io.Json;
import dev.longspan.io.SafetensorsFile;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.ModelGrowth;
import dev.longspan.model.ShardedAttention;
import dev.longspan.model.Transformer;
import dev.longspan.model.TrainingPass;
import dev.longspan.position.CrdNtk;
import dev.longspan.position.RopeConfig;
import dev.longspan.position.RopeKind;
import dev.longspan.util.Log;
import dev.longspan.util.LongspanException;
import dev.longspan.util.LongspanFailure;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The training loop. Deterministic: every sample is a pure function of (seed, step, micro-batch),
 * the optimiser state lives in the checkpoint, and every kernel gives the same bits for the same
 * thread count — so a run stopped at any point and resumed from its last checkpoint continues on
 * exactly the same loss curve.
 */
public final class Trainer {

    /** One optimiser step's numbers. */
    public record StepReport(long step, int totalSteps, double loss, double lr, double gradNorm, int seqLen,
                             long tokens, double seconds) {}

    /** Progress callbacks (the CLI draws the bar). */
    public interface Listener {
        default void onStart(long fromStep, int totalSteps) {}
        default void onStep(StepReport r) {}
        default void onEval(long step, double loss) {}
        default void onCheckpoint(long step) {}
    }

    private final TrainConfig tc;
    private final TextCorpus corpus;
    private final Path out;
    private final Listener listener;
    private final Transformer model;
    private final AdamW opt;
    private final LrSchedule schedule;
    private final Map<Integer, TrainingPass> passes = new HashMap<>();
    // what the optimiser updates: the parameter array, or a LoRA run's adapters and also-trained tensors
    private final float[] trained;
    private final LoraTraining lora;   // null: full training
    private final boolean[] decayMask;
    private final CrdNtk crd;
    private Replicas replicas = Replicas.SINGLE;
    private ShardedAttention sharded;   // sequence parallelism: this process trains its rows of every sequence
    private final Map<Integer, TrainingPass> shardedPasses = new HashMap<>();
    private final HaystackText haystacks;   // null without train.synthetic.text_filler
    private RopeConfig passRope;            // the RoPE the cached passes were built with
    private long step;              // steps completed

    public Trainer(TrainConfig tc, TextCorpus corpus, Path out, Listener listener) {
        this(tc, corpus, out, listener, null);
    }

    /**
     * A LoRA run when {@code loraSetup} is given: its base model is loaded (frozen, a GGUF's
     * matrices as stored) and only the adapters and the tensors it names are trained; else full
     * training of a model of tc's config.
     */
    public Trainer(TrainConfig tc, TextCorpus corpus, Path out, Listener listener, LoraTraining.Setup loraSetup) {
        if (loraSetup == null) requireMemory(tc);
        checkData(tc, corpus);
        if (tc.warmup() > tc.steps()) {
            Log.warn("train.warmup " + tc.warmup() + " is longer than the " + tc.steps() + " steps: the learning rate never reaches train.lr");
        }
        if (corpus.heldOutWindows(tc.seqLen() + 1) == 0) {
            Log.warn("the held-out text (" + corpus.heldOutBytes() + " bytes) is shorter than one sequence of " + (tc.seqLen() + 1)
                    + " bytes: no held-out loss will be measured (raise train.held_out or give more text)");
        }
        this.tc = tc;
        this.corpus = corpus;
        this.out = out;
        this.listener = listener;
        this.lora = loraSetup == null ? null : new LoraTraining(loraSetup, tc.model());
        if (lora != null) requireLoraMemory(tc, lora);
        this.model = lora == null ? new Transformer(tc.model()) : lora.model;
        this.trained = lora == null ? model.params : lora.trained;
        this.opt = new AdamW(trained.length, (float) tc.beta1(), (float) tc.beta2(), (float) tc.eps(), (float) tc.weightDecay());
        this.schedule = new LrSchedule(tc.lr(), tc.minLr(), tc.warmup(), tc.steps());
        this.decayMask = lora == null ? model.decayMask() : lora.decayMask();
        RopeConfig rc = tc.model().rope();
        this.crd = rc.kind() == RopeKind.CRD_NTK ? new CrdNtk(rc) : null;
        this.haystacks = haystacks(tc, corpus);
        // a growing NTK factor rebuilds the model under each step's RoPE; adapters stay bound to the base's
        if (lora != null && tc.factorGrowth() != null) throw new LongspanException("train.crd_ntk (a growing NTK factor) cannot be combined with --lora");
    }

    // the text_filler files, after checking that --data does not train on the held-out file either
    private static HaystackText haystacks(TrainConfig tc, TextCorpus corpus) {
        TrainConfig.TextFiller tf = tc.textFiller();
        if (tf == null) return null;
        String field = "train.synthetic.text_filler";
        Path heldOut = Path.of(tf.heldOut());
        HaystackText h = HaystackText.open(tf.files().stream().map(Path::of).toList(), heldOut, field);
        for (Path p : corpus.paths()) {
            if (HaystackText.sameFile(p, heldOut)) {
                throw new LongspanException("--data: " + p + " is the held-out text (" + field + ".held_out): leave it out of the training data");
            }
        }
        Log.info("passkey haystacks: " + String.format("%.0f", 100 * tf.share()) + "% from " + h.files().size() + " text file(s), "
                + h.bytes() + " bytes; held out: " + heldOut);
        return h;
    }

    /** Refuses (before anything is allocated) a run that does not fit in the heap. */
    public static void requireMemory(TrainConfig tc) {
        TrainingMemory.require(tc, "training at train.seq_len " + tc.seqLen());
    }

    /** Refuses training text shorter than one sequence when the run draws text windows from it. */
    public static void checkData(TrainConfig tc, TextCorpus corpus) {
        boolean usesText = tc.passkeyRate() + tc.kvRate() < 1 || tc.realFiller();
        if (usesText && corpus.trainBytes() < tc.seqLen() + 1L) {
            throw new LongspanException("--data: the training text has " + corpus.trainBytes() + " bytes, shorter than one sequence of "
                    + (tc.seqLen() + 1) + " bytes (train.seq_len + 1); give more text or a shorter seq_len");
        }
    }

    // a LoRA run holds its base's parameter array (a GGUF's stored matrices are mapped, not in the
    // heap), the training passes full training would, and four arrays of what it trains (values,
    // gradients, two moments) instead of four of every parameter
    private static void requireLoraMemory(TrainConfig tc, LoraTraining lora) {
        dev.longspan.util.Heap.requireArray((long) tc.seqLen() * tc.model().vocabSize(), "LoRA training at train.seq_len " + tc.seqLen());
        long passes = TrainingMemory.estimate(tc) - 5 * 4L * tc.model().parameterCount();
        long need = 4L * lora.model.params.length + 4 * 4L * lora.trained.length + passes;
        dev.longspan.util.Heap.require(need, "LoRA training at train.seq_len " + tc.seqLen());
    }

    /**
     * Where a checkpointed run stands: its step and its schedule's total (and the config file's)
     * steps; the LoRA settings of a LoRA run (null for full training).
     */
    public record Checkpointed(long step, int steps, int configSteps, LoraTraining.Setup lora) {}

    /** Reads only the checkpoint's metadata (no arrays). */
    public static Checkpointed checkpointed(Path out) {
        Path p = out.resolve(Checkpoint.FILE);
        if (!Files.exists(p)) throw new LongspanException(p + ": no checkpoint to resume from");
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            Map<String, String> meta = f.metadata();
            if (!Checkpoint.FORMAT.equals(meta.get("format"))) throw new LongspanException(p + ": not a Longspan checkpoint (format " + meta.get("format") + ")");
            String tj = meta.get("train_config");
            if (tj == null) throw new LongspanException(p + ": metadata lacks the train config");
            long step;
            try {
                step = Long.parseLong(meta.getOrDefault("step", ""));
            } catch (NumberFormatException e) {
                throw new LongspanException(p + ": bad step in metadata");
            }
            if (!(Json.parseObject(tj, p + " (train_config)").get("train") instanceof Map<?, ?> t) || !(t.get("steps") instanceof Long steps)) {
                throw new LongspanException(p + ": its train config has no train.steps");
            }
            long configSteps = t.get(TrainConfig.CONFIG_STEPS) instanceof Long c ? c : steps;
            String lj = meta.get(Checkpoint.LORA);
            LoraTraining.Setup setup = lj == null ? null : LoraTraining.Setup.fromJson(Json.parseObject(lj, p + " (lora)"), p + " (lora)");
            return new Checkpointed(step, (int) (long) steps, (int) configSteps, setup);
        }
    }

    /**
     * The config to resume the run in {@code out} with. The schedule (warm-up, cosine decay) depends
     * on the total steps, so it is kept unless asked otherwise: {@code --steps} when given
     * ({@code stepsGiven}: tc already holds it), else the run's own total — which an earlier
     * {@code --steps} may have set — unless the --config's train.steps differs from the file the
     * run started with (a next stage that extends the schedule). A change is announced; a run with
     * no step left to train is refused.
     */
    public static TrainConfig resumed(TrainConfig tc, boolean stepsGiven, Path out) {
        Checkpointed c = checkpointed(out);
        TrainConfig r = stepsGiven || tc.configSteps() != c.configSteps() ? tc : tc.withSteps(c.steps());
        if (r.steps() != c.steps()) {
            Log.warn("the learning-rate schedule changes from " + c.steps() + " to " + r.steps() + " total steps ("
                    + (stepsGiven ? "--steps" : "train.steps of --config") + "): from step " + c.step() + " on, the run differs from an uninterrupted one");
        }
        if (c.step() >= r.steps()) {
            throw new LongspanException(out + ": the run is already at step " + c.step() + " of its " + r.steps()
                    + "-step schedule, nothing to train (give a larger --steps to continue it)");
        }
        return r;
    }

    public Transformer model() { return model; }

    /**
     * Data parallelism: this process trains micro-batches rank, rank + count, ... of every step and
     * the gradients and losses are summed across processes before the (identical) update; only
     * rank 0 writes files and evaluates. Call before {@link #start}.
     */
    public void distribute(Replicas r) {
        if (r.count() > tc.batch()) {
            throw new LongspanException("train.batch " + tc.batch() + " is smaller than the " + r.count()
                    + " processes of --parallel data (each needs at least one micro-batch per step)");
        }
        replicas = r;
    }

    /**
     * Sequence parallelism: every process trains every micro-batch, on its rows of each sequence
     * (attention through {@code attention}, all else token-local), and the partial gradients and
     * losses are summed across processes; only rank 0 writes files and evaluates. Call before {@link #start}.
     */
    public void distributeSequence(Replicas r, ShardedAttention attention) {
        // the sharded passes are built once on the model's own RoPE
        if (tc.factorGrowth() != null) throw new LongspanException("train.crd_ntk (a growing NTK factor) cannot be combined with --parallel sequence");
        replicas = r;
        sharded = attention;
    }

    // one micro-batch of sequence parallelism: this process's rows; returns the sequence's mean loss
    private double shardedMicro(TrainingPass pass, int n, int[] tokens, int[] targets, long[] pos, boolean accumulate) {
        int a = sharded.start(n), t = sharded.length(n);
        int[] tk = Arrays.copyOfRange(tokens, a, a + t), tg = Arrays.copyOfRange(targets, a, a + t);
        long[] ps = Arrays.copyOfRange(pos, a, a + t);
        // a token shift's first rows read the previous shard's last tokens
        int[] before = a > 0 && model.config.shifted() ? Arrays.copyOfRange(tokens, Math.max(0, a - model.config.tokenShift()), a) : null;
        double[] total = {pass.forward(tk, tg, ps, before), pass.counted};
        replicas.sum(total);
        int counted = Math.max(1, (int) total[1]);
        pass.backward(tk, tg, ps, 1f / (counted * tc.batch()), accumulate, before);
        return total[0] / counted;
    }

    /** What the optimiser updates: the parameters, or a LoRA run's adapters then its also-trained tensors. */
    public float[] trained() { return trained; }
    public long step() { return step; }

    /**
     * Fine-tuning: a fresh run (new optimiser state, step 0) whose weights come from another model
     * directory. Its shapes must equal this config's; the attention plan, RoPE and context length
     * may differ (that is what fine-tuning for long contexts changes).
     */
    public void startFrom(Path modelDir) { startFrom(modelDir, -1); }

    /**
     * As {@link #startFrom(Path)}; when this config has more layers than the model, the new ones are
     * inserted before the model's layer {@code insertAt} (-1: before its last layer), see {@link dev.longspan.model.ModelGrowth}.
     */
    public void startFrom(Path modelDir, int insertAt) {
        if (lora != null) throw new IllegalStateException("a LoRA run starts from its base model");
        Transformer src = LongspanFormat.read(modelDir);
        var a = src.config;
        int at = insertPlace(a, insertAt);
        Growth g = checkInit(a, tc.model(), modelDir, insertAt);
        start(false);
        switch (g) {
            case WIDER_HEADS -> {
                ModelGrowth.widenHeads(src, model, tc.seed() ^ 0x5eedL, modelDir.toString());
                Log.info("fine-tuning from " + modelDir + ", head_dim widened " + a.headDim() + " -> " + tc.model().headDim() + " (the same function at step 0)");
            }
            case WIDER_RESIDUAL -> {
                ModelGrowth.widenResidual(src, model, tc.seed() ^ 0x3d1de5L, modelDir.toString());
                var b = tc.model();
                double exactEps = (double) a.normEps() * a.dim() / b.dim();   // the ε that keeps RMSNorm's ε·d'/d the old one
                boolean exact = Math.abs(b.normEps() - exactEps) <= 1e-3 * exactEps;
                Log.info("fine-tuning from " + modelDir + ", dim " + a.dim() + " -> " + b.dim() + ", ffn_dim " + a.ffnDim() + " -> " + b.ffnDim()
                        + " (the new dimensions start at zero: the same function at step 0"
                        + (exact ? ")" : ", up to RMSNorm's epsilon: norm_eps " + exactEps + " would make it exact)"));
            }
            case MORE_LAYERS -> {
                int added = tc.model().layers() - a.layers();
                ModelGrowth.insertLayers(src, model, at, tc.seed() ^ 0x1a7e5L, modelDir.toString());
                Log.info("fine-tuning from " + modelDir + ", " + added + " new layer(s) at " + at + ".." + (at + added - 1)
                        + " (zero output projections: the same function at step 0)");
            }
            case NONE -> {
                System.arraycopy(src.params, 0, model.params, 0, model.params.length);
                Log.info("fine-tuning from " + modelDir);
            }
            case TOKEN_SHIFT -> {
                // the previous-token embeddings are last in the layout, in order: the old parameters are the prefix
                System.arraycopy(src.params, 0, model.params, 0, src.params.length);
                java.util.Arrays.fill(model.params, src.params.length, model.params.length, 0f);
                int added = tc.model().tokenShift() - a.tokenShift();
                Log.info("fine-tuning from " + modelDir + ", " + (added == 1 ? "a previous-token embedding" : added + " previous-token embeddings")
                        + " added (token_shift " + a.tokenShift() + " -> " + tc.model().tokenShift() + "; zero: the same function at step 0)");
            }
        }
    }

    // where inserted layers go: before layer insertAt, by default (-1) before the last layer
    private static int insertPlace(ModelConfig a, int insertAt) { return insertAt >= 0 ? insertAt : a.layers() - 1; }

    /** How a fine-tune's config grows the model it starts from. */
    public enum Growth { NONE, WIDER_HEADS, MORE_LAYERS, WIDER_RESIDUAL, TOKEN_SHIFT }

    /**
     * Checks, before any work, that a model of config {@code a} (in {@code modelDir}) can start a run
     * of config {@code b}: the same shape (attention, RoPE and context length may differ), heads a
     * whole multiple wider, or more layers inserted before layer {@code insertAt} (-1: before its last
     * layer); one line otherwise.
     */
    public static Growth checkInit(ModelConfig a, ModelConfig b, Path modelDir, int insertAt) {
        String what = modelDir.toString();
        if (a.tokenShift() > b.tokenShift()) {
            throw new LongspanException(what + ": the model has " + a.tokenShift() + " previous-token embedding(s) (token_shift) and --config's model "
                    + (b.shifted() ? "has " + b.tokenShift() : "none") + "; set \"token_shift\": " + (a.tokenShift() == 1 ? "true" : a.tokenShift()) + " or more");
        }
        if (a.shifted() || b.shifted()) {
            // adding previous-token tables, or a shifted model fine-tuned: every other size the same
            if (!sameShape(a, b)) {
                throw new LongspanException(what + ": " + (a.tokenShift() == b.tokenShift() ? "a model with token_shift" : "adding token_shift")
                        + " keeps every other size of the shape (only attention, rope and context_length may change; grow one way per run)");
            }
            if (insertAt >= 0) throw new LongspanException("--insert-layers-at: " + what + " has as many layers as --config's model");
            return a.tokenShift() == b.tokenShift() ? Growth.NONE : Growth.TOKEN_SHIFT;
        }
        if (ModelGrowth.widening(a, b) >= 2) {
            ModelGrowth.checkWidening(a, b, what);
            return Growth.WIDER_HEADS;
        }
        if (ModelGrowth.insertion(a, b) >= 1) {
            ModelGrowth.checkInsertion(a, b, insertPlace(a, insertAt), what);
            return Growth.MORE_LAYERS;
        }
        if (ModelGrowth.residualWidening(a, b)) {
            if (insertAt >= 0) throw new LongspanException("--insert-layers-at: " + what + " has as many layers as --config's model (it widens dim/ffn_dim; grow one way per run)");
            return Growth.WIDER_RESIDUAL;
        }
        if (!sameShape(a, b)) {
            throw new LongspanException(what + ": its shape differs from --config's model (only attention, rope and context_length may change when fine-tuning; head_dim may grow by a whole multiple, layers may be added, dim and ffn_dim may grow)");
        }
        return Growth.NONE;
    }

    // the same sizes (attention, rope, context_length and token_shift aside)
    private static boolean sameShape(ModelConfig a, ModelConfig b) {
        return a.vocabSize() == b.vocabSize() && a.dim() == b.dim() && a.layers() == b.layers() && a.heads() == b.heads()
                && a.kvHeads() == b.kvHeads() && a.headDim() == b.headDim() && a.ffnDim() == b.ffnDim()
                && a.tiedEmbeddings() == b.tiedEmbeddings() && a.qkNorm() == b.qkNorm() && a.qkvBias() == b.qkvBias();
    }

    /** Fresh start (initialised weights) or resume from {@code out/checkpoint.safetensors}. */
    public void start(boolean resume) {
        if (resume) {
            Checkpoint.State s = Checkpoint.load(out);
            if (!s.model().equals(tc.model())) {
                throw new LongspanException(out.resolve(Checkpoint.FILE) + ": its model config differs from --config's model (resume with the same config)");
            }
            if (s.params().length != trained.length) {
                throw new LongspanException(out.resolve(Checkpoint.FILE) + ": holds " + s.params().length + " trained values but this run trains " + trained.length
                        + (lora == null ? " (a LoRA run's checkpoint?)" : " (its LoRA settings differ)"));
            }
            System.arraycopy(s.params(), 0, trained, 0, trained.length);
            if (lora != null) lora.syncToModel();
            System.arraycopy(s.m(), 0, opt.m, 0, opt.m.length);
            System.arraycopy(s.v(), 0, opt.v, 0, opt.v.length);
            step = s.step();
            opt.step = s.step();
            if (replicas.rank() == 0) truncateMetrics(step);
            Log.info("resuming from step " + step);
        } else {
            if (lora == null) model.initialize(tc.seed());
            else lora.initialize(tc.seed());
            step = 0;
            if (replicas.rank() != 0) return;
            try {
                Files.createDirectories(out);
                Files.deleteIfExists(out.resolve("metrics.jsonl"));
            } catch (IOException e) {
                throw new LongspanException(out + ": cannot prepare the output directory: " + e.getMessage(), e);
            }
        }
    }

    /** Fills one training sample for (step, micro): tokens [n+1], targets [n]. */
    public void sample(long s, int micro, int n, int[] tokens, int[] targets) {
        SplittableRandom rnd = new SplittableRandom(mix(tc.seed(), s, micro));
        double u = rnd.nextDouble();
        if (u < tc.passkeyRate()) {
            // without text_filler no extra draw is made, so older runs' samples are unchanged
            PasskeyTask.Filler filler = haystacks != null && rnd.nextDouble() < tc.textFiller().share()
                    ? haystacks.stream(rnd)
                    : tc.realFiller() && rnd.nextBoolean()
                    ? (dst, from, len) -> corpus.filler(rnd, dst, from, len)
                    : PasskeyTask.Filler.standard();
            // like text_filler: no extra draw without numbers, so older runs' samples are unchanged
            if (tc.decoyNumbers() > 0) filler = filler.withNumbers(rnd, tc.decoyNumbers());
            if (tc.technicalNumbers() > 0) filler = filler.withTechnical(rnd, tc.technicalNumbers());
            if (tc.marks() > 0) filler = filler.withMarks(rnd, tc.marks());
            if (tc.tables() > 0) filler = filler.withTables(rnd, tc.tables());
            if (n + 1 < PasskeyTask.minimumLength("00000") + 8) {
                corpus.trainWindow(rnd, tokens, n + 1);
                for (int t = 0; t < n; t++) targets[t] = tokens[t + 1];
                return;
            }
            PasskeyTask.trainingSample(rnd, n, filler, tc.nearMisses(), tokens, targets);
        } else if (u < tc.passkeyRate() + tc.kvRate()) {
            KeyValueTask.trainingSample(rnd, n, tokens, targets);
        } else {
            corpus.trainWindow(rnd, tokens, n + 1);
            for (int t = 0; t < n; t++) targets[t] = tokens[t + 1];
        }
    }

    static long mix(long seed, long step, int micro) {
        long z = seed * 0x9E3779B97F4A7C15L + step * 0xBF58476D1CE4E5B9L + micro * 0x94D049BB133111EBL;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    // the passes are bound to the RoPE of the step that built them: a new NTK factor drops them
    private TrainingPass pass(int n) {
        RopeConfig rope = ropeAt(step);
        if (!rope.equals(passRope)) {
            passes.clear();
            passRope = rope;
        }
        Transformer m = modelWith(rope);
        return passes.computeIfAbsent(n, k -> lora == null ? new TrainingPass(m, k, tc.recompute()) : new TrainingPass(m, k, tc.recompute(), lora.layout));
    }

    /** The RoPE a step trains with: the model's, or with train.crd_ntk the NTK factor of that step. */
    RopeConfig ropeAt(long s) {
        return crd == null ? tc.model().rope() : crd.configAt(s, tc.factorGrowth());
    }

    // what the model directory holds: the weights under the RoPE of the last step trained
    private Transformer trainedModel() {
        return modelWith(ropeAt(Math.max(0, step - 1)));
    }

    // the weights (shared, not copied) under another RoPE
    private Transformer modelWith(RopeConfig rope) {
        return rope.equals(tc.model().rope()) ? model : model.withConfig(tc.model().withRope(rope));
    }

    private static long[] positions(int n) {
        long[] p = new long[n];
        for (int i = 0; i < n; i++) p[i] = i;
        return p;
    }

    // CRD-NTK: each training sequence gets its own random offset, from a range that grows with the step
    long[] trainingPositions(long s, int micro, int n) {
        return crd == null ? positions(n) : crd.trainingPositions(s, micro, n);
    }

    /** Runs one optimiser step; returns its report. */
    public StepReport trainStep() {
        long t0 = System.nanoTime();
        int n = tc.seqLenAt(step);
        TrainingPass pass = sharded == null ? pass(n)
                : shardedPasses.computeIfAbsent(n, k -> new TrainingPass(model, sharded.length(k), tc.recompute(), sharded, k));
        int[] tokens = new int[n + 1], targets = new int[n];
        double lossSum = 0;
        int first = sharded == null ? replicas.rank() : 0, stride = sharded == null ? replicas.count() : 1;
        for (int micro = first; micro < tc.batch(); micro += stride) {
            sample(step, micro, n, tokens, targets);
            long[] pos = trainingPositions(step, micro, n);
            if (sharded != null) {
                lossSum += shardedMicro(pass, n, tokens, targets, pos, micro > 0);
                continue;
            }
            double l = pass.forward(tokens, targets, pos);
            int counted = Math.max(1, pass.counted);
            lossSum += l / counted;
            pass.backward(tokens, targets, pos, 1f / (counted * tc.batch()), micro > first);
        }
        if (replicas.count() > 1) {
            replicas.sum(pass.grads);
        }
        if (replicas.count() > 1 && sharded == null) {
            double[] total = {lossSum};
            replicas.sum(total);
            lossSum = total[0];
        }
        double norm = AdamW.clipGradNorm(pass.grads, tc.clip());
        double lr = schedule.at(step);
        opt.update(trained, pass.grads, decayMask, (float) lr);
        if (lora != null) lora.syncToModel();
        step++;
        double loss = lossSum / tc.batch();
        if (!Double.isFinite(loss)) {
            throw new LongspanFailure("training diverged: the loss became " + loss + " at step " + step
                    + " (lower train.lr or raise train.warmup; the last checkpoint is intact)");
        }
        return new StepReport(step, tc.steps(), loss, lr, norm, n, (long) n * tc.batch(), (System.nanoTime() - t0) / 1e9);
    }

    /** Mean loss per token on held-out text windows of the training length. */
    public double evaluate() {
        int n = tc.seqLen();
        long windows = corpus.heldOutWindows(n + 1);
        int count = (int) Math.min(tc.evalWindows(), windows);
        if (count == 0) return Double.NaN;
        TrainingPass pass = pass(n);
        int[] tokens = new int[n + 1], targets = new int[n];
        long[] pos = positions(n);
        double sum = 0;
        long stride = Math.max(1, windows / count);
        for (int k = 0; k < count; k++) {
            corpus.heldOutWindow((int) (k * stride), tokens, n + 1);
            for (int t = 0; t < n; t++) targets[t] = tokens[t + 1];
            sum += pass.forward(tokens, targets, pos) / n;
        }
        return sum / count;
    }

    /** Trains until {@code tc.steps()}, with evaluation, metrics and checkpoints on the way. */
    public void run() {
        run(tc.steps());
    }

    /**
     * Trains until step {@code stopAt} (at most {@code tc.steps()}) without changing the schedule,
     * which still runs to {@code tc.steps()}; a checkpoint is written at the stop.
     */
    public void run(int stopAt) {
        int end = Math.min(stopAt, tc.steps());
        listener.onStart(step, tc.steps());
        while (step < end) {
            StepReport r = trainStep();
            Map<String, Object> line = new LinkedHashMap<>();
            line.put("step", r.step());
            line.put("loss", r.loss());
            line.put("lr", r.lr());
            line.put("grad_norm", r.gradNorm());
            line.put("seq_len", (long) r.seqLen());
            line.put("tokens_per_s", r.tokens() / r.seconds());
            if (replicas.rank() != 0) continue;
            listener.onStep(r);
            if (step % tc.evalEvery() == 0 || step == tc.steps()) {
                double ev = evaluate();
                if (Double.isFinite(ev)) {
                    line.put("eval_loss", ev);
                    listener.onEval(step, ev);
                }
            }
            appendMetrics(line);
            if (step % tc.checkpointEvery() == 0 || step == end) {
                if (lora == null) {
                    LongspanFormat.save(out, trainedModel());
                    Checkpoint.save(out, step, model, opt, tc);
                } else {
                    lora.save(out);
                    Checkpoint.save(out, step, model.config, trained, opt, tc, lora.setup.toJson());
                }
                listener.onCheckpoint(step);
            }
        }
    }

    private void appendMetrics(Map<String, Object> line) {
        try {
            Files.writeString(out.resolve("metrics.jsonl"), Json.write(line) + "\n", StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new LongspanException(out.resolve("metrics.jsonl") + ": cannot append: " + e.getMessage(), e);
        }
    }

    // On resume, metrics written after the checkpoint belong to steps that will be redone.
    private void truncateMetrics(long upTo) {
        Path p = out.resolve("metrics.jsonl");
        if (!Files.exists(p)) return;
        try {
            StringBuilder keep = new StringBuilder();
            for (String l : Files.readAllLines(p, StandardCharsets.UTF_8)) {
                if (l.isBlank()) continue;
                try {
                    Object s = Json.parseObject(l, p.toString()).get("step");
                    if (s instanceof Long st && st <= upTo) keep.append(l).append('\n');
                } catch (LongspanException e) {
                    // a torn last line from a killed run: drop it
                }
            }
            AtomicFiles.writeString(p, keep.toString());
        } catch (IOException e) {
            throw new LongspanException(p + ": cannot read: " + dev.longspan.io.IoErrors.reason(e), e);
        }
    }

    /** All metric lines of the run so far (for plotting). */
    public static List<Map<String, Object>> readMetrics(Path out) {
        Path p = out.resolve("metrics.jsonl");
        List<Map<String, Object>> rows = new ArrayList<>();
        if (!Files.exists(p)) return rows;
        try {
            for (String l : Files.readAllLines(p, StandardCharsets.UTF_8)) {
                if (l.isBlank()) continue;
                try {
                    rows.add(Json.parseObject(l, p.toString()));
                } catch (LongspanException ignored) {
                    // torn line
                }
            }
        } catch (IOException e) {
            throw new LongspanException(p + ": cannot read: " + dev.longspan.io.IoErrors.reason(e), e);
        }
        return rows;
    }
}

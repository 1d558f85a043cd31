package dev.longspan.cli;


import dev.longspan.model.Lora;
import dev.longspan.model.ModelConfig;
import dev.longspan.train.LoraTraining;
import dev.longspan.train.TextCorpus;
import dev.longspan.train.TrainConfig;
import dev.longspan.train.Trainer;
import dev.longspan.util.LongspanException;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

@Command(name = "train", mixinStandardHelpOptions = true,
        description = "Train a model from a JSON config on text files; checkpoints are atomic and --resume continues the exact same run.")
final class TrainCommand implements Runnable {
    @Option(names = "--config", required = true, paramLabel = "FILE.json", description = "Model and training config (see configs/).")
    Path config;

    @Option(names = "--data", required = true, arity = "1..*", paramLabel = "FILE", description = "UTF-8 text files to train on.")
    List<Path> data;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Run directory: model, checkpoint, metrics.jsonl, loss.png.")
    Path out;

    @Option(names = "--steps", paramLabel = "N", description = "Override train.steps.")
    Integer steps;

    @Option(names = "--stop-at", paramLabel = "STEP", description = "Stop (with a checkpoint) after this step; the schedule still runs to train.steps.")
    Integer stopAt;

    @Option(names = "--init", paramLabel = "MODEL", description = "Fine-tune: start from this model's weights (same shape; attention, rope and context length may differ, head_dim may grow by a whole multiple, layers may be added (--insert-layers-at), dim and ffn_dim may grow: the grown model starts as the same function); with --lora also a GGUF file or a Hugging Face directory.")
    Path init;

    @Option(names = "--insert-layers-at", paramLabel = "K", description = "With --init into a config with more layers: insert the new layers before the --init model's layer K (default: before its last layer); they start with zero output projections, so the grown model starts as the same function.")
    Integer insertLayersAt;

    @Option(names = "--lora", paramLabel = "RANK", description = "LoRA: freeze the --init model (quantized weights stay quantized) and train adapters of this rank, saved in --out as a Hugging Face PEFT adapter.")
    Integer lora;

    @Option(names = "--lora-alpha", paramLabel = "A", description = "LoRA alpha: the adapters are scaled by alpha/rank as in PEFT (default: the rank, a scale of 1).")
    Double loraAlpha;

    @Option(names = "--lora-targets", paramLabel = "LIST", description = "Matrices that get adapters, a comma-separated list of q, k, v, o, gate, up, down (default: ${DEFAULT-VALUE}).")
    String loraTargets = "q,k,v,o";

    @Option(names = "--train-also", paramLabel = "LIST", description = "With --lora, also train these in full, comma-separated: embeddings, norms (default: nothing).")
    String trainAlso;

    @Option(names = "--resume", description = "Continue from DIR/checkpoint.safetensors.")
    boolean resume;

    @Option(names = "--force", description = "Train into an --out that already holds files: the model, checkpoint, metrics and plot there are replaced (other files are kept).")
    boolean force;

    @Option(names = "--json", description = "Print one JSON summary object on standard output.")
    boolean json;

    @Option(names = "--parallel", paramLabel = "MODE", description = {"data: under mpirun -np P, each process trains its share of every step's micro-batches;",
            "sequence: each process trains its contiguous part of every sequence (sequence-parallel attention);",
            "gradients are all-reduced, rank 0 writes the files."})
    String parallel;

    @Mixin
    Main.ComputeOptions compute;

    @Override
    public void run() {
        compute.apply();
        dev.longspan.mpi.Mpi mpi = null;
        if (parallel != null) {
            if (!parallel.equals("data") && !parallel.equals("sequence")) throw new LongspanException("--parallel must be data or sequence, got '" + parallel + "'");
            mpi = dev.longspan.mpi.Mpi.world();
            // no --threads (the pool still has every core): the processes on this machine share its cores
            if (compute.threads == null && dev.longspan.tensor.Parallel.threads() == Runtime.getRuntime().availableProcessors()) {
                dev.longspan.tensor.Parallel.setThreads(dev.longspan.mpi.Mpi.threadsPerProcess());
            }
        }
        boolean lead = mpi == null || mpi.rank() == 0;
        LoraTraining.Setup loraSetup = loraSetup();
        if (loraSetup != null && "sequence".equals(parallel)) throw new LongspanException("--lora with --parallel sequence is not supported (use --parallel data)");
        TrainConfig tc;
        try {
            Map<String, Object> root = dev.longspan.io.Json.parseObject(Files.readString(config), config.toString());
            if (loraSetup != null && !root.containsKey("model")) {
                // a LoRA run's model is its base: a config may give only the training settings
                root.put("model", dev.longspan.format.ModelLoader.config(loraSetup.base()).toJson());
            }
            tc = TrainConfig.fromJson(root, config.toString());
        } catch (NoSuchFileException e) {
            throw new LongspanException(config + ": no such file");
        } catch (IOException e) {
            throw new LongspanException(config + ": cannot read: " + dev.longspan.io.IoErrors.reason(e));
        }
        if (steps != null) {
            if (steps < 1) throw new LongspanException("--steps must be at least 1, got " + steps);
            tc = tc.withSteps(steps);
        }
        if (stopAt != null && stopAt < 1) throw new LongspanException("--stop-at must be at least 1, got " + stopAt);
        List<String> earlier = checkOut();
        if (init != null && loraSetup == null && !Files.isDirectory(init)) throw new LongspanException("--init " + init + ": not a model directory");
        int insertAt = insertLayersAt == null ? -1 : insertLayersAt;
        if (init != null && loraSetup == null) Trainer.checkInit(ModelConfig.read(init.resolve("config.json")), tc.model(), init, insertAt);
        if (resume) {
            tc = Trainer.resumed(tc, steps != null, out);
            long at = Trainer.checkpointed(out).step();
            if (stopAt != null && stopAt <= at) throw new LongspanException("--stop-at " + stopAt + ": the run is already at step " + at);
        }
        if (loraSetup == null) Trainer.requireMemory(tc);   // a LoRA run checks once its base is loaded
        long t0 = System.nanoTime();
        final TrainConfig cfg = tc;
        double[] last = {Double.NaN, Double.NaN};
        long[] trained = {0};
        long[] reached = {0};
        try (TextCorpus corpus = new TextCorpus(data, tc.heldOut())) {
            Trainer.checkData(tc, corpus);
            if (lead) System.err.printf("model: %,d parameters, %d layers, attention %s%n", tc.model().parameterCount(), tc.model().layers(), tc.model().attentionSpecs());
            if (lead) System.err.printf("data: %,d training bytes, %,d held-out bytes from %d file(s)%n", corpus.trainBytes(), corpus.heldOutBytes(), data.size());
            if (lead && loraSetup != null) System.err.println("fine-tuning " + loraSetup.base() + " with " + LoraTraining.describe(loraSetup));
            try (ProgressBar bar = new ProgressBarBuilder().setTaskName("train").setInitialMax(tc.steps())
                    .setStyle(ProgressBarStyle.ASCII).setConsumer(lead ? progressConsumer(System.err, onTerminal(), PROGRESS_LINE_MILLIS) : new me.tongfei.progressbar.DelegatingProgressBarConsumer(line -> { }))
                    .setUpdateIntervalMillis(500).showSpeed(speedFormat()).build()) {
                Trainer trainer = new Trainer(tc, corpus, out, new Trainer.Listener() {
                    @Override public void onStart(long from, int total) { bar.stepTo(from); }
                    @Override public void onStep(Trainer.StepReport r) {
                        last[0] = r.loss();
                        bar.stepTo(r.step());
                        bar.setExtraMessage(progressMessage(r.loss(), r.tokens() / r.seconds()));
                    }
                    @Override public void onEval(long step, double loss) { last[1] = loss; }
                    @Override public void onCheckpoint(long step) { Plots.lossCurve(out.resolve("loss.png"), Trainer.readMetrics(out)); }
                }, loraSetup);
                trained[0] = trainer.trained().length;
                if (mpi != null && parallel.equals("data")) trainer.distribute(new dev.longspan.mpi.DataParallel(mpi));
                if (mpi != null && parallel.equals("sequence")) trainer.distributeSequence(new dev.longspan.mpi.DataParallel(mpi), new dev.longspan.mpi.SequenceShards(mpi));
                if (init != null && loraSetup == null) {
                    trainer.startFrom(init, insertAt);
                } else {
                    trainer.start(resume);
                }
                if (force && lead) removeEarlierRun(earlier);
                trainer.run(stopAt != null ? stopAt : cfg.steps());
                reached[0] = trainer.step();
            }
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        if (mpi != null) mpi.finish();
        if (!lead) return;
        Map<String, Object> summary = new LinkedHashMap<>();
        summary.put("out", out.toString());
        summary.put("steps", reached[0]);
        summary.put("final_loss", last[0]);
        summary.put("final_eval_loss", Double.isNaN(last[1]) ? null : last[1]);
        summary.put("seconds", secs);
        summary.put("parameters", cfg.model().parameterCount());
        summary.put("trained_parameters", trained[0]);
        if (json) {
            Json.print(summary);
        } else {
            System.out.printf("trained to step %d in %s: loss %.4f, held-out %.4f; %s in %s%n", reached[0],
                    Duration.ofSeconds((long) secs).toString().substring(2).toLowerCase(), last[0], last[1], loraSetup != null ? "adapter" : "model", out);
        }
    }

    /** Files a run writes into --out (what --force replaces). */
    private static final List<String> RUN_FILES = List.of(dev.longspan.train.Checkpoint.FILE, "config.json", "model.safetensors", "metrics.jsonl", "loss.png",
            dev.longspan.format.PeftAdapter.CONFIG, dev.longspan.format.PeftAdapter.WEIGHTS);

    /**
     * The LoRA settings: from --lora and its options on a fresh run, from the checkpoint on
     * --resume (null: full training).
     */
    private LoraTraining.Setup loraSetup() {
        boolean loraOptions = loraAlpha != null || trainAlso != null || !"q,k,v,o".equals(loraTargets);
        if (lora == null) {
            if (loraOptions) throw new LongspanException("--lora-alpha, --lora-targets and --train-also need --lora RANK");
            if (!resume || !Files.isRegularFile(out.resolve(dev.longspan.train.Checkpoint.FILE))) return null;
            return Trainer.checkpointed(out).lora();
        }
        if (resume) throw new LongspanException("--lora with --resume: a LoRA run resumes with the settings its checkpoint holds (give --resume alone)");
        if (init == null) throw new LongspanException("--lora needs --init MODEL (the model the adapters are trained on)");
        if (lora < 1) throw new LongspanException("--lora must be at least 1, got " + lora);
        double alpha = loraAlpha != null ? loraAlpha : lora;
        if (!(alpha > 0) || Double.isInfinite(alpha)) throw new LongspanException("--lora-alpha must be a positive number, got " + loraAlpha);
        Set<Lora.Target> targets = EnumSet.noneOf(Lora.Target.class);
        for (String t : loraTargets.split(",", -1)) targets.add(Lora.Target.byFlag(t, "--lora-targets"));
        Set<LoraTraining.Also> also = EnumSet.noneOf(LoraTraining.Also.class);
        if (trainAlso != null) for (String a : trainAlso.split(",", -1)) also.add(LoraTraining.Also.parse(a));
        dev.longspan.format.ModelLoader.formatOf(init);   // a missing or unrecognised model fails here, naming it
        return new LoraTraining.Setup(init, new Lora.Spec(lora, alpha, targets), also);
    }

    /**
     * Nothing a user made is overwritten unasked: a fresh run needs an --out that is new or empty
     * (or --force). Returns what --out holds.
     */
    private List<String> checkOut() {
        if (insertLayersAt != null && (init == null || lora != null)) throw new LongspanException("--insert-layers-at needs --init MODEL without --lora (it places the layers a grown config adds)");
        if (insertLayersAt != null && insertLayersAt < 0) throw new LongspanException("--insert-layers-at must be 0 or more, got " + insertLayersAt);
        if (init != null && resume) throw new LongspanException("--init and --resume exclude each other (--resume continues a run that --init started)");
        if (force && resume) throw new LongspanException("--force and --resume exclude each other (--resume continues the run in --out, --force starts over)");
        if (Files.exists(out) && !Files.isDirectory(out)) throw new LongspanException(out + ": is a file, not a directory");
        if (resume) {
            if (Files.isDirectory(out)) dev.longspan.io.AtomicFiles.checkWritableDirectory(out);
            return List.of(); // a missing checkpoint is reported by the resume itself
        }
        if (init != null && sameDirectory(init, out)) {
            throw new LongspanException("--init and --out are the same directory (the fine-tuned model would replace the one it starts from); choose another --out");
        }
        List<String> present = list(out);
        if (!present.isEmpty() && !force) {
            String shown = String.join(", ", present.subList(0, Math.min(5, present.size()))) + (present.size() > 5 ? ", ... (" + present.size() + " in all)" : "");
            if (present.contains(dev.longspan.train.Checkpoint.FILE)) {
                throw new LongspanException(out + ": already holds a run (" + shown + "); use --resume to continue it, --force to start over in it, or another --out");
            }
            if (present.contains("config.json") || present.contains("model.safetensors")) {
                throw new LongspanException(out + ": already holds a model (" + shown + "); use another --out, or --force to replace it");
            }
            throw new LongspanException(out + ": is not empty (" + shown + "); use another --out, or --force to train into it anyway");
        }
        dev.longspan.io.AtomicFiles.checkWritableDirectory(out);
        return present;
    }

    // --force, once the run has started: what an earlier run left would mix with this one if it stopped before its first checkpoint
    private void removeEarlierRun(List<String> present) {
        for (String f : RUN_FILES) {
            if (!present.contains(f)) continue;
            try {
                Files.deleteIfExists(out.resolve(f));
            } catch (IOException e) {
                throw new LongspanException(out.resolve(f) + ": cannot replace: " + e.getMessage());
            }
        }
    }

    private static List<String> list(Path dir) {
        if (!Files.isDirectory(dir)) return List.of();
        try (java.util.stream.Stream<Path> s = Files.list(dir)) {
            // another rank of an MPI run may be probing the same --out (checkWritableDirectory) right now
            return s.map(p -> p.getFileName().toString()).filter(n -> !dev.longspan.io.AtomicFiles.isProbe(n)).sorted().toList();
        } catch (IOException e) {
            throw new LongspanException(dir + ": cannot list: " + e.getMessage());
        }
    }

    private static boolean sameDirectory(Path a, Path b) {
        try {
            return Files.exists(a) && Files.exists(b) && Files.isSameFile(a, b);
        } catch (IOException e) {
            return false;
        }
    }

    /** Steps per second on the bar: "0.5/s", not the default pattern's ".5/s". */
    static java.text.DecimalFormat speedFormat() {
        return new java.text.DecimalFormat("0.0", java.text.DecimalFormatSymbols.getInstance(java.util.Locale.ROOT));
    }

    /** The bar's extra message; the bar appends it right after the speed, so it starts with a space. */
    static String progressMessage(double loss, double tokensPerSecond) {
        return String.format(java.util.Locale.ROOT, " loss %.3f  %,.0f tok/s", loss, tokensPerSecond);
    }

    /** Milliseconds between progress lines when standard error is not a terminal. */
    static final long PROGRESS_LINE_MILLIS = 30_000;

    // whether the user watches a terminal (JDK 22+: System.console() exists even when redirected)
    private static boolean onTerminal() {
        java.io.Console c = System.console();
        return c != null && c.isTerminal();
    }

    /**
     * Where the progress bar goes. On a terminal it is redrawn in place, flushed at every update
     * (the library's console consumer prints without a flush, so a redrawn line can wait in the
     * stream's buffer). Elsewhere — a log file of a run in the background — one line every
     * {@code everyMillis} (the first at once), each flushed: a `tail -f` of a 20-minute run showed
     * nothing until its end.
     */
    static me.tongfei.progressbar.ProgressBarConsumer progressConsumer(java.io.PrintStream err, boolean terminal, long everyMillis) {
        if (terminal) {
            return new me.tongfei.progressbar.ConsoleProgressBarConsumer(err) {
                @Override public void accept(String rendered) {
                    super.accept(rendered);
                    err.flush();
                }
            };
        }
        long[] last = {Long.MIN_VALUE};
        return new me.tongfei.progressbar.DelegatingProgressBarConsumer(rendered -> {
            long now = System.nanoTime() / 1_000_000;
            if (last[0] != Long.MIN_VALUE && now - last[0] < everyMillis) return;
            last[0] = now;
            err.println(rendered.strip());
            err.flush();
        }, 160);
    }
}

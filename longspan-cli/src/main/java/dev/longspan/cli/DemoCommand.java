package dev.longspan.cli;

import dev.longspan.attention.Attention;
import dev.longspan.attention.AttentionOptions;
import dev.longspan.attention.Pattern;
import dev.longspan.attention.Plan;
import dev.longspan.eval.PasskeyEval;
import dev.longspan.format.LongspanFormat;
import dev.longspan.model.Transformer;
import dev.longspan.train.PasskeyTask;
import dev.longspan.util.Heap;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The main job on bundled defaults: passkey retrieval with the bundled model (table + heatmap),
 * then one line per attention kind comparing its speed and memory with dense attention.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"Passkey retrieval with the bundled model up to 1M tokens (--full: 4M), and every attention kind against dense.",
                "Dense attention's time for the longest length is measured at --dense-lengths and extrapolated."})
final class DemoCommand implements Runnable {
    @Option(names = "--model", paramLabel = "DIR", description = "Model directory (default: ${DEFAULT-VALUE}).")
    Path model = Path.of("models/longspan-passkey");

    @Option(names = "--full", description = "Also 4K, 256K and 4M tokens (4M: about 1.5-3 minutes per trial on 2 cores and about 6 GB).")
    boolean full;

    @Option(names = "--lengths", paramLabel = "L,...", description = "Passkey lengths instead of the defaults: 1k 16k 64k 1m, and with --full 1k 4k 16k 64k 256k 1m 4m.")
    String lengthsOption;

    @Option(names = "--dense-lengths", paramLabel = "L1,L2", description = "Where dense attention's time is measured, to extrapolate it to the longest passkey length (default: ${DEFAULT-VALUE}).")
    String denseLengths = "8k,16k";

    @Option(names = "--out", paramLabel = "DIR", description = "Where the heatmap and results go (default: ${DEFAULT-VALUE}).")
    Path out = Path.of("runs/demo");

    @Option(names = "--attention-length", paramLabel = "N", description = "Sequence length of the attention comparison (default: 16k).")
    String attentionLength = "16k";

    @Option(names = "--json", description = "Print one JSON object on standard output.")
    boolean json;

    @Option(names = "--kv", paramLabel = "f32|f16", description = "KV cache precision (default: ${DEFAULT-VALUE}).") String kv = "f32";
    @Option(names = "--logn", paramLabel = "L", description = KvFlag.LOGN_DESCRIPTION) Integer logn;

    @Option(names = "--long-attention", paramLabel = "SPEC",
            description = "Pattern that replaces full attention beyond 64K tokens, where dense would take hours (default: ${DEFAULT-VALUE}).")
    String longAttention = "selectmerge:region=64,top=5,merge=1";
    @Option(names = "--lm", paramLabel = "DIR|none",
            description = "Language model of the perplexity-vs-context section (default: ${DEFAULT-VALUE}; skipped with a note when the default is absent; none skips it).")
    String lm = DEFAULT_LM;
    @Option(names = "--lm-text", paramLabel = "FILE",
            description = "Text the language model never trained on (default: ${DEFAULT-VALUE}, the novel its recipe holds out).")
    Path lmText = DEFAULT_LM_TEXT;
    @Option(names = "--lm-lengths", paramLabel = "L,...",
            description = "Context lengths of the language model's perplexity (default: 1k,4k,16k; with --full up to 256k).")
    String lmLengths;

    static final String DEFAULT_LM = "models/longspan-lm";
    static final Path DEFAULT_LM_TEXT = Path.of("data/gutenberg/pg98.txt");
    /** Bytes scored at every length of the language model's section: the same bytes, more text before them. */
    static final int LM_TAIL = 512;

    @Mixin
    Main.ComputeOptions compute;

    @Override
    public void run() {
        compute.apply();
        if (!Files.isDirectory(model)) {
            throw new LongspanException(model + ": the bundled model is missing (see docs/MODEL.md for the two-stage recipe in configs/bundled-stage1.json and bundled-stage2.json)");
        }
        Transformer m = LongspanFormat.read(model);
        int[] lengths = lengthsOption != null ? Sizes.parseList(lengthsOption, "--lengths")
                : full ? new int[]{1024, 4096, 16384, 65536, 262144, 1048576, 4194304} : new int[]{1024, 16384, 65536, 1048576};
        int[] denseL = Sizes.parseList(denseLengths, "--dense-lengths");
        if (denseL.length != 2 || denseL[0] >= denseL[1]) throw new LongspanException("--dense-lengths: two increasing lengths, got '" + denseLengths + "'");
        PasskeyEval.requireLengths(dev.longspan.io.ByteTokenizer.INSTANCE, lengths, "--lengths");
        PasskeyEval.requireLengths(dev.longspan.io.ByteTokenizer.INSTANCE, denseL, "--dense-lengths");
        double[] depths = {0.0, 0.5, 1.0};
        LmSection lmSection = lmSection();
        dev.longspan.io.AtomicFiles.checkWritableDirectory(out);
        int n = Sizes.parse(attentionLength, "--attention-length");
        int heads = 8, d = 64;
        // refused now, not after the passkey runs: a length too long for the heap, and q, k, v, o of the comparison
        PasskeyEval.requireMemory(m, lengths, KvFlag.options(kv, logn, m.config));
        PasskeyEval.requireMemory(m, denseL, KvFlag.options(kv, logn, m.config));
        Heap.requireArray((long) heads * n * d, "--attention-length " + attentionLength);
        Heap.require(4 * 4L * heads * n * d, "--attention-length " + attentionLength);
        System.err.printf("passkey retrieval with %s (%s), lengths %s, depths 0/0.5/1%n", model, String.join(", ", m.config.attentionSpecs()),
                java.util.Arrays.stream(lengths).mapToObj(Sizes::format).toList());
        PasskeyEval.Listener progress = (t, done, total) ->
                System.err.printf("  [%d/%d] %s at depth %.2f: %s (answer '%s') in %.1fs%n", done, total, Sizes.format(t.length()), t.depth(),
                        t.correct() ? "ok" : "wrong", t.answer(), t.seconds());
        int[] shortL = java.util.Arrays.stream(lengths).filter(L -> L <= 65536).toArray();
        int[] longL = java.util.Arrays.stream(lengths).filter(L -> L > 65536).toArray();
        List<PasskeyEval.Cell> cells = new ArrayList<>(
                PasskeyEval.run(m, shortL, depths, 1, PasskeyTask.Filler.standard(), 1, KvFlag.options(kv, logn, m.config), progress));
        if (longL.length > 0) {
            // beyond 64K, full attention costs hours on a CPU: its layers switch to a linear pattern
            Pattern linear = dev.longspan.model.LayerPatterns.expand(longAttention, 1, "--long-attention").get(0);
            List<Pattern> plan = m.config.attention().stream().map(a -> a instanceof Pattern.Dense ? linear : a).toList();
            System.err.printf("beyond 64K: attention %s%n", plan.stream().map(Pattern::spec).toList());
            Transformer longModel = new Transformer(m.config.withAttention(plan));
            System.arraycopy(m.params, 0, longModel.params, 0, m.params.length);
            cells.addAll(PasskeyEval.run(longModel, longL, depths, 1, PasskeyTask.Filler.standard(), 1, KvFlag.options(kv, logn, m.config), progress));
        }
        int correct = 0;
        for (PasskeyEval.Cell c : cells) correct += c.correct();
        if (!json) {
            StringBuilder head = new StringBuilder(String.format("%-8s", "length"));
            for (double dd : depths) head.append(String.format(" %6.2f", dd));
            System.out.println(head.append("   passkey accuracy by needle depth"));
            for (int L : lengths) {
                StringBuilder line = new StringBuilder(String.format("%-8s", Sizes.format(L)));
                for (PasskeyEval.Cell c : cells) if (c.length() == L) line.append(String.format(" %5.0f%%", 100 * c.accuracy()));
                System.out.println(line);
            }
            System.out.printf("passkey %d/%d correct%n%n", correct, cells.size());
        }
        Map<String, Object> denseCost = denseCost(m, denseL, lengths[lengths.length - 1], cells);
        if (lmSkipped != null) System.err.println(lmSkipped);
        Map<String, Object> lmResult = lmSection == null ? null : lmSection.run();

        String[] kinds = {"dense", "window:size=1024", "block:size=1024", "dilated:w=2048,8192,32768;r=1,4,16",
                "selectmerge:region=256,top=8,merge=2", "window:size=512+dilated:w=4096,16384;r=4,16"};
        SplittableRandom rnd = new SplittableRandom(3);
        float[] q = new float[heads * n * d], k = new float[heads * n * d], v = new float[heads * n * d];
        for (int i = 0; i < q.length; i++) { q[i] = (float) rnd.nextGaussian(); k[i] = (float) rnd.nextGaussian(); v[i] = (float) rnd.nextGaussian(); }
        float[] o = new float[q.length], lse = new float[heads * n];
        List<Map<String, Object>> lines = new ArrayList<>();
        double denseSeconds = Double.NaN;
        // warm-up: the first kind timed must not pay for compiling the kernels every kind shares (4K: long
        // enough that select-and-merge's later own blocks choose, so its grouped rows are compiled too)
        for (String spec : kinds) {
            int w = Math.min(n, 4096);
            Attention.forward(Arrays.copyOf(q, heads * w * d), Arrays.copyOf(k, heads * w * d), Arrays.copyOf(v, heads * w * d), d,
                    Plan.of(Pattern.parse(spec), w, heads, heads, true), AttentionOptions.DEFAULT, new float[heads * w * d], new float[heads * w]);
        }
        (json ? System.err : System.out).printf("attention kinds at N=%s, %d heads x %d, causal forward (the faster of two runs):%n", Sizes.format(n), heads, d);
        for (String spec : kinds) {
            // the faster of two runs: the first at the full length may still compile a branch the warm-up never took
            Plan plan = null;
            double secs = Double.POSITIVE_INFINITY;
            for (int run = 0; run < 2; run++) {
                plan = Plan.of(Pattern.parse(spec), n, heads, heads, true);
                long t0 = System.nanoTime();
                Attention.forward(q, k, v, d, plan, AttentionOptions.DEFAULT, o, lse);
                secs = Math.min(secs, (System.nanoTime() - t0) / 1e9);
            }
            // beyond q, k, v, o: the LSE, the plan's state (select-and-merge's selection) and per-worker tiles
            long extra = 4L * heads * n + plan.stateBytes() + Attention.scratchBytesPerWorker(d) * dev.longspan.tensor.Parallel.threads();
            long pairs = plan.pairs();
            if (spec.equals("dense")) denseSeconds = secs;
            Map<String, Object> line = new LinkedHashMap<>();
            line.put("pattern", spec);
            line.put("seconds", secs);
            line.put("keys_per_query", (double) pairs / heads / n);
            line.put("speedup_vs_dense", denseSeconds / secs);
            line.put("extra_bytes", extra);
            line.put("dense_score_matrix_bytes", 4L * heads * n * n);
            lines.add(line);
            if (!json) {
                double ratio = denseSeconds / secs;
                String vsDense = ratio >= 1 ? String.format("%5.1fx faster than dense", ratio) : String.format("%5.1fx slower than dense", 1 / ratio);
                System.out.printf("%-44s %7.2f s  %7.1f keys/query  %s  extra memory %s (an N×N score matrix: %s)%n", spec, secs,
                        (double) pairs / heads / n, vsDense, human(extra), human(4L * heads * n * n));
            }
        }
        if (!json && Arrays.stream(kinds).anyMatch(sp -> sp.startsWith("selectmerge"))) {
            // random q and k are select-and-merge's worst case: say so beside its row
            System.out.println("(random q, k: every selectmerge query picks its own regions, so no two rows share a tile; the rows of an own block"
                    + " still read each chosen region together. In a trained model retrieval heads keep picking the same regions, and the bundled"
                    + " model's queries read at most 512 keys)");
        }
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("model", model.toString());
        List<Map<String, Object>> pk = new ArrayList<>();
        for (PasskeyEval.Cell c : cells) pk.add(Map.of("length", c.length(), "depth", c.depth(), "accuracy", c.accuracy(), "seconds", c.meanSeconds()));
        result.put("passkey", pk);
        result.put("passkey_correct", correct);
        result.put("passkey_trials", cells.size());
        result.put("dense_extrapolation", denseCost);
        if (lmResult != null) result.put("language_model", lmResult);
        result.put("attention", lines);
        result.put("heatmap", out.resolve("passkey.png").toString());
        // results that cannot be saved are still printed: the runs are not thrown away
        LongspanException unsaved = null;
        try {
            PasskeyCommand.heatmap(out.resolve("passkey.png"), lengths, depths, cells);
            dev.longspan.io.AtomicFiles.writeString(out.resolve("demo.json"), dev.longspan.io.Json.writePretty(result));
        } catch (LongspanException e) {
            unsaved = e;
        }
        if (json) {
            Json.print(result);
            if (unsaved != null) throw unsaved;
            return;
        }
        if (unsaved != null) throw unsaved;
        System.out.printf("%nheatmap %s, results %s%n", out.resolve("passkey.png"), out.resolve("demo.json"));
    }

    private String lmSkipped;   // said where the section would have run, not among the checks of the arguments

    /**
     * The language model of the perplexity section, loaded and checked before any work runs: null
     * when it is turned off, or when the defaults (models/longspan-lm, the novel its recipe held
     * out in data/gutenberg) are absent — the demo runs on what a checkout has; a path the user
     * gave that does not exist is an error.
     */
    private LmSection lmSection() {
        if (lm.equals("none")) return null;
        Path dir = Path.of(lm);
        boolean defaults = lm.equals(DEFAULT_LM) && lmText.equals(DEFAULT_LM_TEXT);
        if (!Files.isDirectory(dir) || !Files.isRegularFile(lmText)) {
            if (!defaults) {
                throw new LongspanException(!Files.isDirectory(dir) ? "--lm: " + dir + " is not a model directory"
                        : "--lm-text: " + lmText + " is not a readable file");
            }
            lmSkipped = "(language-model section skipped: " + (!Files.isDirectory(dir) ? dir : lmText) + " not found)";
            return null;
        }
        int[] ls = Sizes.parseList(lmLengths != null ? lmLengths : full ? "1k,4k,16k,64k,256k" : "1k,4k,16k", "--lm-lengths");
        Transformer model = LongspanFormat.read(dir);
        if (!(model.config.tokenizer().equals("byte"))) throw new LongspanException("--lm: " + dir + " is not a byte-level model");
        byte[] bytes = dev.longspan.io.IoErrors.readUserFile(lmText);
        int longest = Arrays.stream(ls).max().orElseThrow();
        if (longest + 1 > bytes.length) {
            throw new LongspanException("--lm-lengths: " + Sizes.format(longest) + " needs " + (longest + 1) + " bytes of --lm-text, " + lmText + " has " + bytes.length);
        }
        int tail = Math.min(LM_TAIL, Arrays.stream(ls).min().orElseThrow());
        dev.longspan.model.MemoryEstimate.requireInference(model.config, longest, longest, tail, false, "--lm-lengths: a window of " + longest + " bytes");
        return new LmSection(dir, model, dev.longspan.io.ByteTokenizer.encodeBytes(bytes, 0, bytes.length), ls, tail);
    }

    /** Perplexity of one language model on a text it never saw, the same scored bytes at every context length. */
    private final class LmSection {
        final Path dir;
        final Transformer model;
        final int[] tokens, lengths;
        final int tail;

        LmSection(Path dir, Transformer model, int[] tokens, int[] lengths, int tail) {
            this.dir = dir; this.model = model; this.tokens = tokens; this.lengths = lengths; this.tail = tail;
        }

        Map<String, Object> run() {
            var c = model.config;
            List<String> specs = c.attentionSpecs();
            String plan = specs.stream().distinct().count() == 1 ? specs.size() + " layers of " + specs.get(0) : String.join(", ", specs);
            System.err.printf("language model %s (%s) on %s, context %s%n", dir, plan, lmText,
                    Arrays.stream(lengths).mapToObj(Sizes::format).toList());
            List<dev.longspan.eval.PerplexityEval.Point> pts = dev.longspan.eval.PerplexityEval.run(model, tokens, lengths, tail, 1,
                    dev.longspan.model.InferenceOptions.forModel(c), (L, w, n) -> System.err.printf("  perplexity at %s%n", Sizes.format(L)));
            List<Map<String, Object>> points = new ArrayList<>();
            for (var p : pts) points.add(Map.of("length", p.length(), "perplexity", p.perplexity(), "seconds", p.seconds()));
            if (!json) {
                // the default text is the novel the default model's recipe held out; another text may have been trained on
                String unseen = lmText.equals(DEFAULT_LM_TEXT) && lm.equals(DEFAULT_LM) ? " (never trained on)" : "";
                System.out.printf("language model %s: %.1fM parameters, trained at %s bytes, on %s%s, the same %d bytes scored at every context:%n",
                        dir, c.parameterCount() / 1e6, Sizes.format(c.contextLength()), lmText.getFileName(), unseen, tail);
                System.out.printf("%-8s %10s %8s%n", "context", "perplexity", "seconds");
                for (var p : pts) System.out.printf("%-8s %10.3f %8.1f%n", Sizes.format(p.length()), p.perplexity(), p.seconds());
                double first = pts.get(0).perplexity(), last = pts.get(pts.size() - 1).perplexity();
                System.out.printf("perplexity %s → %s context: %+.1f%%%n%n",
                        Sizes.format(pts.get(0).length()), Sizes.format(pts.get(pts.size() - 1).length()), 100 * (last / first - 1));
            }
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("model", dir.toString());
            r.put("text", lmText.toString());
            r.put("scored_bytes", tail);
            r.put("points", points);
            return r;
        }
    }

    /**
     * Dense attention's time at the longest passkey length, where it is not affordable: one trial
     * with every layer dense at L1 and L2, fitted by t(N) = a·N + b·N² (the linear layers and the
     * quadratic attention) and extrapolated, beside the sparse plan's measured time there.
     */
    private Map<String, Object> denseCost(Transformer m, int[] denseL, int longest, List<PasskeyEval.Cell> cells) {
        List<Pattern> dense = m.config.attention().stream().map(a -> (Pattern) new Pattern.Dense()).toList();
        Transformer dm = new Transformer(m.config.withAttention(dense));
        System.arraycopy(m.params, 0, dm.params, 0, m.params.length);
        System.err.printf("dense attention for comparison at %s and %s%n", Sizes.format(denseL[0]), Sizes.format(denseL[1]));
        double[] t = new double[2];
        for (int i = 0; i < 2; i++) {
            t[i] = PasskeyEval.run(dm, new int[]{denseL[i]}, new double[]{0.5}, 1, PasskeyTask.Filler.standard(), 1,
                    KvFlag.options(kv, logn, m.config), (tr, done, total) -> { }).get(0).meanSeconds();
        }
        double l1 = denseL[0], l2 = denseL[1];
        double b = Math.max(0, (t[1] / l2 - t[0] / l1) / (l2 - l1)), a = Math.max(0, t[0] / l1 - b * l1);
        double estimate = a * longest + b * (double) longest * longest;
        double sparse = cells.stream().filter(c -> c.length() == longest).mapToDouble(PasskeyEval.Cell::meanSeconds).average().orElse(Double.NaN);
        String formula = String.format("t(N) = %.3g·N + %.3g·N² s, fitted to dense at %s (%.2f s) and %s (%.2f s)",
                a, b, Sizes.format(denseL[0]), t[0], Sizes.format(denseL[1]), t[1]);
        if (!json) {
            System.out.printf("at %s tokens: the model's own plan %.1f s per trial (measured); dense attention everywhere ≈ %s (extrapolated: %s)%n%n",
                    Sizes.format(longest), sparse, seconds(estimate), formula);
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("length", longest);
        r.put("plan_seconds", sparse);
        r.put("dense_seconds_estimate", estimate);
        r.put("dense_measured", List.of(Map.of("length", denseL[0], "seconds", t[0]), Map.of("length", denseL[1], "seconds", t[1])));
        r.put("formula", formula);
        return r;
    }

    private static String seconds(double s) {
        if (s >= 3600) return String.format("%.1f h", s / 3600);
        if (s >= 60) return String.format("%.1f min", s / 60);
        return String.format("%.1f s", s);
    }

    static String human(long bytes) {
        if (bytes >= 1L << 30) return String.format("%.1f GiB", bytes / (double) (1L << 30));
        if (bytes >= 1L << 20) return String.format("%.1f MiB", bytes / (double) (1L << 20));
        return String.format("%.0f KiB", bytes / 1024.0);
    }
}

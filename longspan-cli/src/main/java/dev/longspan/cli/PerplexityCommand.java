package dev.longspan.cli;

import dev.longspan.eval.PerplexityEval;
import dev.longspan.eval.TextScorer;
import dev.longspan.io.ByteTokenizer;
import dev.longspan.model.InferenceOptions;
import dev.longspan.format.ModelLoader;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

@Command(name = "perplexity", mixinStandardHelpOptions = true,
        description = {"Perplexity of a text against context length, with a curve PNG.",
                "The same tokens are scored at every length: --windows spans of --tail tokens, evenly spaced over the text and",
                "ending at the same positions for every length; each length feeds the L tokens that end there as context, so",
                "the lengths differ only in how much text precedes the scored tokens. Where the windows end depends on",
                "the longest of --lengths and on --windows: compare lengths within one run."})
final class PerplexityCommand implements Runnable {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--model", required = true, paramLabel = "PATH",
            description = "A GGUF file, a Hugging Face safetensors directory or a Longspan model directory.") Path model;
    @Option(names = "--data", required = true, paramLabel = "FILE", description = "The text to score (UTF-8).") Path data;
    @Option(names = "--lengths", paramLabel = "L,...", description = "Context lengths (default: ${DEFAULT-VALUE}).") String lengths = "256,1k,4k";
    @Option(names = "--tail", paramLabel = "K", description = "Tokens scored in each window, at most the shortest length (default: ${DEFAULT-VALUE}).") int tail = 128;
    @Option(names = "--windows", paramLabel = "W", description = "Scored windows, fewer when the text is short (default: ${DEFAULT-VALUE}).") int windows = 4;
    @Option(names = "--out", paramLabel = "DIR", description = "Where perplexity.json and perplexity.png go, relative to the current directory (default: ${DEFAULT-VALUE}).")
    Path out = Path.of("runs/perplexity");
    @Option(names = "--json", description = "Print one JSON object on standard output.") boolean json;
    @Mixin Main.ComputeOptions compute;
    @picocli.CommandLine.ArgGroup(exclusive = false, heading = "Scoring like llama.cpp:%n") LlamaCppOptions llamaCpp;

    /** The whole-text and llama-perplexity modes: one score for the text, comparable with llama.cpp's. */
    static final class LlamaCppOptions {
        @Option(names = "--whole", description = "Score the whole file as one sequence after BOS (every next token).") boolean whole;
        @Option(names = "--ctx", paramLabel = "C", description = "llama-perplexity's mode: chunks of C tokens, BOS first, the second half of each scored.") Integer ctx;
        @Option(names = "--positions", paramLabel = "FILE", description = "With --whole: write every position's log-sum-exp, argmax and next-token NLL as JSON.") Path positions;
        @Option(names = "--logits-at", paramLabel = "I,...", split = ",", description = "With --positions: positions whose full logits are written (negative: from the end, -1 = last).") int[] logitsAt = {};
        @Option(names = "--arithmetic", paramLabel = "auto|longspan|ggml-avx2|ggml-avx512", description = "ggml-avx2: every logit bit for bit as "
                + "the CPU backend of llama.cpp computes it (b4748 built for AVX2; ggml-avx512: its native AVX-512 build; GGUF llama and qwen2 models with F32, F16, BF16, Q4_0/1, "
                + "Q5_0/1, Q8_0, IQ4_NL, IQ4_XS and Q2_K to Q6_K tensors) instead of with Longspan's kernels; auto: ggml-avx2 where the file allows it "
                + "(--whole: on texts up to 8192 tokens) (default: auto).")
        String arithmetic = "auto";
    }

    @Override
    public void run() {
        compute.apply();
        if (llamaCpp != null) {
            scoreLikeLlamaCpp();
            return;
        }
        if (tail < 1) throw new LongspanException("--tail must be at least 1");
        if (windows < 1) throw new LongspanException("--windows must be at least 1");
        int[] ls = Sizes.parseList(lengths, "--lengths");
        dev.longspan.io.AtomicFiles.checkWritableDirectory(out);
        ModelLoader.LoadedModel lm = modelOptions.load(model);
        Transformer m = lm.model();
        byte[] bytes = dev.longspan.io.IoErrors.readUserFile(data);
        boolean byteLevel = lm.tokenizer() instanceof ByteTokenizer;
        int[] tokens = byteLevel ? ByteTokenizer.encodeBytes(bytes, 0, bytes.length)
                : lm.tokenizer().encode(new String(bytes, java.nio.charset.StandardCharsets.UTF_8));
        // bits per byte from bits per token, with the text's average bytes per token
        double bytesPerToken = (double) bytes.length / Math.max(1, tokens.length);
        InferenceOptions options = modelOptions.inference(m.config);
        List<PerplexityEval.Point> pts = PerplexityEval.run(m, tokens, ls, tail, windows, options,
                (L, w, n) -> System.err.printf("length %s: window %d/%d%n", Sizes.format(L), w, n));
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("model", model.toString());
        result.put("data", data.toString());
        result.put("tail", tail);
        result.put("tokenizer", lm.tokenizer().describe());
        result.put("bytes_per_token", bytesPerToken);
        result.put("logn", options.lognLength());
        result.put("attention", m.config.attentionSpecs());   // the plan scored with: the model's own or --attention's
        result.put("rope", m.config.rope().toSpec());
        // each length against the first, paired over the same windows (null for the first)
        List<PerplexityEval.Paired> vsFirst = pts.stream().map(p -> p == pts.get(0) ? null : p.minus(pts.get(0))).toList();
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int i = 0; i < pts.size(); i++) {
            PerplexityEval.Point p = pts.get(i);
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("length", p.length()); r.put("windows", p.windows()); r.put("tokens_scored", p.tokensScored());
            r.put("loss", p.loss()); r.put("perplexity", p.perplexity()); r.put("bits_per_byte", p.loss() / Math.log(2) / bytesPerToken); r.put("seconds", p.seconds());
            r.put("window_losses", p.windowLosses());
            PerplexityEval.Paired d = vsFirst.get(i);
            if (d != null) {
                Map<String, Object> vs = new LinkedHashMap<>();
                vs.put("length", pts.get(0).length());
                vs.put("loss_diff", d.lossDiff());
                if (!Double.isNaN(d.standardError())) vs.put("standard_error", d.standardError());   // one window: none
                r.put("vs_first", vs);
            }
            rows.add(r);
        }
        result.put("points", rows);
        String series = Plots.planLabel(m.config.attentionSpecs()) + (options.lognLength() > 0 ? ", log-n " + options.lognLength() : "");
        // results that cannot be saved are still printed: the evaluation is not thrown away
        LongspanException unsaved = null;
        try {
            dev.longspan.io.AtomicFiles.writeString(out.resolve("perplexity.json"), dev.longspan.io.Json.writePretty(result));
            Plots.write(out.resolve("perplexity.png"), Plots.perplexityCurve(pts.stream().mapToInt(PerplexityEval.Point::length).toArray(),
                    pts.stream().mapToDouble(PerplexityEval.Point::perplexity).toArray(), series, tail));
        } catch (LongspanException e) {
            unsaved = e;
        }
        if (json) {
            Json.print(result);
            if (unsaved != null) throw unsaved;
            return;
        }
        System.out.printf("%-8s %10s %10s %8s   %s%n", "length", "perplexity", "bits/byte", "seconds", "loss − first length's (paired over windows ± standard error)");
        for (int i = 0; i < pts.size(); i++) {
            PerplexityEval.Point p = pts.get(i);
            PerplexityEval.Paired d = vsFirst.get(i);
            String vs = "";
            if (d != null) {
                vs = Double.isNaN(d.standardError()) ? String.format("%+.5f", d.lossDiff()) : String.format("%+.5f ± %.5f", d.lossDiff(), d.standardError());
            }
            System.out.printf("%-8s %10.3f %10.3f %8.1f   %s%n", Sizes.format(p.length()), p.perplexity(), p.loss() / Math.log(2) / bytesPerToken, p.seconds(), vs);
        }
        if (unsaved != null) throw unsaved;
        System.out.println("wrote " + out.resolve("perplexity.json") + " and " + out.resolve("perplexity.png"));
    }

    private void scoreLikeLlamaCpp() {
        LlamaCppOptions o = llamaCpp;
        if (o.whole == (o.ctx != null)) throw new LongspanException("give one of --whole and --ctx C");
        if (o.positions != null && !o.whole) throw new LongspanException("--positions needs --whole");
        if (o.logitsAt.length > 0 && o.positions == null) throw new LongspanException("--logits-at needs --positions FILE");
        if (o.positions != null && java.nio.file.Files.exists(o.positions)) throw new LongspanException(o.positions + " exists (not overwritten)");
        String why = replayable(o);
        dev.longspan.eval.GgmlReplica.Build build = switch (o.arithmetic) {
            case "ggml-avx512" -> dev.longspan.eval.GgmlReplica.Build.AVX512;
            default -> dev.longspan.eval.GgmlReplica.Build.AVX2;
        };
        boolean replica = switch (o.arithmetic) {
            case "auto" -> {
                if (why != null) {
                    if (o.ctx != null) dev.longspan.util.Log.info("Longspan's kernels, not llama.cpp's arithmetic replayed: " + why);
                    yield false;
                }
                yield o.ctx != null || wholeReplayFits();
            }
            case "longspan" -> false;
            case "ggml-avx2", "ggml-avx512" -> {
                if (why != null) throw new LongspanException("--arithmetic " + o.arithmetic + ": " + why);
                yield true;
            }
            default -> throw new LongspanException("--arithmetic must be auto, longspan, ggml-avx2 or ggml-avx512, got '" + o.arithmetic + "'");
        };
        // --ctx is llama-perplexity's mode: its default cache type (F16) unless --kv says otherwise
        String kv = modelOptions.kv != null ? modelOptions.kv : o.ctx != null ? "f16" : "f32";
        if (replica) {
            scoreAsLlamaCpp(o, kv, build);
            return;
        }
        ModelLoader.LoadedModel lm = modelOptions.load(model);
        byte[] bytes = dev.longspan.io.IoErrors.readUserFile(data);
        int[] tokens = TextScorer.tokenize(lm.tokenizer(), bytes);
        Map<String, Object> result = header(o, "longspan", kv);
        TextScorer.Score score;
        if (o.whole) {
            TextScorer.Positions p = TextScorer.whole(lm.model(), tokens, KvFlag.options(kv, modelOptions.logn, lm.model().config), o.logitsAt);
            score = p.score();
            if (o.positions != null) writePositions(o.positions, p);
        } else {
            score = TextScorer.chunked(lm.model(), tokens, o.ctx, lm.tokenizer().addBos() ? lm.tokenizer().bosId() : -1, KvFlag.options(kv, modelOptions.logn, lm.model().config));
        }
        report(result, tokens.length, score, o.positions);
    }

    /** --whole replays llama.cpp's arithmetic by default for texts up to this many tokens (it holds every logit and n² scores). */
    static final int WHOLE_REPLAY_TOKENS = 8192;

    // whether --whole's default replays llama.cpp: a text short enough that all its logits fit in 256 MiB
    private boolean wholeReplayFits() {
        int n = TextScorer.tokenize(dev.longspan.io.TokenizerLoader.load(model), dev.longspan.io.IoErrors.readUserFile(data)).length;
        long vocab = ModelLoader.config(model).vocabSize();
        boolean fits = n <= WHOLE_REPLAY_TOKENS && n * vocab <= 1L << 26;
        if (!fits) dev.longspan.util.Log.info("Longspan's kernels: --whole replays llama.cpp's arithmetic for texts of at most "
                + WHOLE_REPLAY_TOKENS + " tokens whose logits fit in 256 MiB, and this one has " + n);
        return fits;
    }

    // the first keys of the --whole / --ctx result
    private Map<String, Object> header(LlamaCppOptions o, String arithmetic, String kv) {
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("model", model.toString());
        result.put("data", data.toString());
        result.put("mode", o.whole ? "whole" : "ctx");
        if (o.ctx != null) result.put("ctx", o.ctx);
        result.put("arithmetic", arithmetic);
        result.put("kv", kv);
        return result;
    }

    /** Null when llama.cpp's arithmetic can be replayed for this model and these options; else why not. */
    private String replayable(LlamaCppOptions o) {
        String conflict = modelOptions.replayConflict(model);
        if (conflict != null) return conflict;
        try (dev.longspan.io.GgufFile g = dev.longspan.io.GgufFile.open(model)) {
            new dev.longspan.eval.GgmlReplica(g, true);
            return null;
        } catch (LongspanException e) {
            return e.getMessage();
        }
    }

    // --arithmetic ggml-avx2|ggml-avx512: the GGUF's own model, plan and RoPE, evaluated as llama.cpp evaluates it
    private void scoreAsLlamaCpp(LlamaCppOptions o, String kv, dev.longspan.eval.GgmlReplica.Build build) {
        boolean f16Cache = kv.equals("f16");
        dev.longspan.io.Tokenizer tokenizer = dev.longspan.io.TokenizerLoader.load(model);
        byte[] bytes = dev.longspan.io.IoErrors.readUserFile(data);
        int[] tokens = TextScorer.tokenize(tokenizer, bytes);
        String name = build == dev.longspan.eval.GgmlReplica.Build.AVX2 ? "ggml-avx2" : "ggml-avx512";
        Map<String, Object> result = header(o, name, kv);
        try (dev.longspan.io.GgufFile g = dev.longspan.io.GgufFile.open(model)) {
            dev.longspan.eval.GgmlReplica r = new dev.longspan.eval.GgmlReplica(g, f16Cache, build);
            dev.longspan.util.Log.info("llama.cpp's CPU arithmetic replayed (its " + build + " kernels, " + kv + " cache) on " + tokens.length + " tokens");
            TextScorer.Score score;
            if (o.whole) {
                TextScorer.Positions p = TextScorer.whole(r, tokens, o.logitsAt);
                score = p.score();
                if (o.positions != null) writePositions(o.positions, p);
            } else {
                score = TextScorer.chunked(TextScorer.Logits.of(r), tokens, o.ctx, tokenizer.addBos() ? tokenizer.bosId() : -1);
            }
            report(result, tokens.length, score, o.positions);
        }
    }

    private void report(Map<String, Object> result, int textTokens, TextScorer.Score score, Path positions) {
        result.put("text_tokens", textTokens);
        result.put("tokens", score.tokens());
        result.put("mean_nll", score.meanNll());
        result.put("perplexity", score.perplexity());
        if (json) {
            Json.print(result);
            return;
        }
        System.out.printf("perplexity %.4f (mean NLL %.6f over %d tokens)%n", score.perplexity(), score.meanNll(), score.tokens());
        if (positions != null) System.out.println("wrote " + positions);
    }

    // the names of llama.cpp's reference files (llamacpp-reference.json), so both compare key by key
    private void writePositions(Path file, TextScorer.Positions p) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("model", model.toString());
        r.put("text_file", data.toString());
        r.put("tokens", p.tokens());
        r.put("logits_lse", p.lse());
        r.put("argmax", p.argmax());
        r.put("target_nll", p.nll());
        r.put("mean_nll", p.meanNll());
        Map<String, Object> logits = new LinkedHashMap<>();
        p.logits().forEach((pos, l) -> logits.put(Integer.toString(pos), l));
        r.put("logits", logits);
        try {
            // compact: one line per key would be thousands of lines for the arrays
            dev.longspan.io.AtomicFiles.writeString(file, new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(r) + "\n");
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise per-position values", e);
        }
    }
}

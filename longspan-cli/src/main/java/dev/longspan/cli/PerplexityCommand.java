package dev.longspan.cli;

import dev.longspan.eval.PerplexityEval;
import dev.longspan.eval.TextScorer;
import dev.longspan.io.ByteTokenizer;
import dev.longspan.model.ModelLoader;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

@Command(name = "perplexity", mixinStandardHelpOptions = true,
        description = "Perplexity of a text against context length (loss on the final tokens of each window), with a curve PNG.")
final class PerplexityCommand implements Runnable {
    @Option(names = "--model", required = true, paramLabel = "PATH",
            description = "A GGUF file, a Hugging Face safetensors directory or a Longspan model directory.") Path model;
    @Option(names = "--data", required = true, paramLabel = "FILE") Path data;
    @Option(names = "--lengths", paramLabel = "L,...", description = "Context lengths (default: ${DEFAULT-VALUE}).") String lengths = "256,1k,4k";
    @Option(names = "--tail", paramLabel = "K", description = "Tokens scored at the end of each window (default: ${DEFAULT-VALUE}).") int tail = 128;
    @Option(names = "--windows", paramLabel = "W", description = "Windows per length (default: ${DEFAULT-VALUE}).") int windows = 4;
    @Option(names = "--attention", paramLabel = "SPEC") String attention;
    @Option(names = "--rope", paramLabel = "SPEC") String rope;
    @Option(names = "--out", paramLabel = "DIR", description = "Where perplexity.json and perplexity.png go (default: the model directory).") Path out;
    @Option(names = "--json", description = "Print one JSON object on standard output.") boolean json;
    @Option(names = "--kv", paramLabel = "f32|f16", description = "KV cache precision (default: ${DEFAULT-VALUE}).") String kv = "f32";
    @Option(names = "--logn", paramLabel = "L", description = "Log-n attention scaling beyond L tokens (0 = off; default: ${DEFAULT-VALUE}).") int logn = 0;
    @Mixin Main.ComputeOptions compute;
    @picocli.CommandLine.ArgGroup(exclusive = false, heading = "Scoring like llama.cpp:%n") LlamaCppOptions llamaCpp;

    /** The whole-text and llama-perplexity modes: one score for the text, comparable with llama.cpp's. */
    static final class LlamaCppOptions {
        @Option(names = "--whole", description = "Score the whole file as one sequence after BOS (every next token).") boolean whole;
        @Option(names = "--ctx", paramLabel = "C", description = "llama-perplexity's mode: chunks of C tokens, BOS first, the second half of each scored.") Integer ctx;
        @Option(names = "--positions", paramLabel = "FILE", description = "With --whole: write every position's log-sum-exp, argmax and next-token NLL as JSON.") Path positions;
        @Option(names = "--logits-at", paramLabel = "I,...", split = ",", description = "With --positions: positions whose full logits are written (negative: from the end, -1 = last).") int[] logitsAt = {};
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
        ModelLoader.LoadedModel lm = ModelLoading.load(model, attention, rope);
        Transformer m = lm.model();
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(data);
        } catch (NoSuchFileException e) {
            throw new LongspanException(data + ": no such file");
        } catch (IOException e) {
            throw new LongspanException(data + ": cannot read: " + e.getMessage());
        }
        boolean byteLevel = lm.tokenizer() instanceof ByteTokenizer;
        int[] tokens = byteLevel ? ByteTokenizer.encodeBytes(bytes, 0, bytes.length)
                : lm.tokenizer().encode(new String(bytes, java.nio.charset.StandardCharsets.UTF_8));
        // bits per byte from bits per token, with the text's average bytes per token
        double bytesPerToken = (double) bytes.length / Math.max(1, tokens.length);
        List<PerplexityEval.Point> pts = PerplexityEval.run(m, tokens, ls, tail, windows, KvFlag.options(kv, logn),
                (L, w, n) -> System.err.printf("length %s: window %d/%d%n", Sizes.format(L), w, n));
        Path dir = out != null ? out : ModelLoading.defaultOut(model);
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("model", model.toString());
        result.put("data", data.toString());
        result.put("tail", tail);
        result.put("tokenizer", lm.tokenizer().describe());
        result.put("bytes_per_token", bytesPerToken);
        List<Map<String, Object>> rows = new ArrayList<>();
        for (PerplexityEval.Point p : pts) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("length", p.length()); r.put("windows", p.windows()); r.put("tokens_scored", p.tokensScored());
            r.put("loss", p.loss()); r.put("perplexity", p.perplexity()); r.put("bits_per_byte", p.loss() / Math.log(2) / bytesPerToken); r.put("seconds", p.seconds());
            rows.add(r);
        }
        result.put("points", rows);
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new LongspanException(dir + ": cannot create: " + e.getMessage());
        }
        dev.longspan.io.AtomicFiles.writeString(dir.resolve("perplexity.json"), dev.longspan.io.Json.writePretty(result));
        XYChart chart = new XYChartBuilder().width(700).height(450).title("Perplexity vs context length")
                .xAxisTitle("context length (tokens)").yAxisTitle("perplexity of the last " + tail + " tokens").build();
        chart.getStyler().setXAxisLogarithmic(true).setLegendPosition(Styler.LegendPosition.InsideNE);
        chart.addSeries(m.config.attention().getFirst(), pts.stream().mapToDouble(PerplexityEval.Point::length).toArray(),
                pts.stream().mapToDouble(PerplexityEval.Point::perplexity).toArray());
        Plots.write(dir.resolve("perplexity.png"), chart);
        if (json) {
            Json.print(result);
            return;
        }
        System.out.printf("%-8s %10s %10s %8s%n", "length", "perplexity", "bits/byte", "seconds");
        for (PerplexityEval.Point p : pts) System.out.printf("%-8s %10.3f %10.3f %8.1f%n", Sizes.format(p.length()), p.perplexity(), p.loss() / Math.log(2) / bytesPerToken, p.seconds());
        System.out.println("wrote " + dir.resolve("perplexity.json") + " and " + dir.resolve("perplexity.png"));
    }

    private void scoreLikeLlamaCpp() {
        LlamaCppOptions o = llamaCpp;
        if (o.whole == (o.ctx != null)) throw new LongspanException("give one of --whole and --ctx C");
        if (o.positions != null && !o.whole) throw new LongspanException("--positions needs --whole");
        if (o.logitsAt.length > 0 && o.positions == null) throw new LongspanException("--logits-at needs --positions FILE");
        if (o.positions != null && java.nio.file.Files.exists(o.positions)) throw new LongspanException(o.positions + " exists (not overwritten)");
        ModelLoader.LoadedModel lm = ModelLoading.load(model, attention, rope);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(data);
        } catch (NoSuchFileException e) {
            throw new LongspanException(data + ": no such file");
        } catch (IOException e) {
            throw new LongspanException(data + ": cannot read: " + e.getMessage());
        }
        int[] tokens = TextScorer.tokenize(lm.tokenizer(), bytes);
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("model", model.toString());
        result.put("data", data.toString());
        result.put("mode", o.whole ? "whole" : "ctx");
        if (o.ctx != null) result.put("ctx", o.ctx);
        TextScorer.Score score;
        if (o.whole) {
            TextScorer.Positions p = TextScorer.whole(lm.model(), tokens, KvFlag.options(kv, logn), o.logitsAt);
            score = p.score();
            if (o.positions != null) writePositions(o.positions, p);
        } else {
            score = TextScorer.chunked(lm.model(), tokens, o.ctx, lm.tokenizer().addBos() ? lm.tokenizer().bosId() : -1, KvFlag.options(kv, logn));
        }
        result.put("text_tokens", tokens.length);
        result.put("tokens", score.tokens());
        result.put("mean_nll", score.meanNll());
        result.put("perplexity", score.perplexity());
        if (json) {
            Json.print(result);
            return;
        }
        System.out.printf("perplexity %.4f (mean NLL %.6f over %d tokens)%n", score.perplexity(), score.meanNll(), score.tokens());
        if (o.positions != null) System.out.println("wrote " + o.positions);
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

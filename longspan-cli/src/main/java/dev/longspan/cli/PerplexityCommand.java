package dev.longspan.cli;

import dev.longspan.eval.PerplexityEval;
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

    @Override
    public void run() {
        compute.apply();
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
            throw new LongspanException(data + ": cannot read: " + dev.longspan.io.IoErrors.reason(e));
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
}

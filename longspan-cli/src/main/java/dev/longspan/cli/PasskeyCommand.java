package dev.longspan.cli;

import dev.longspan.eval.PasskeyEval;
import dev.longspan.model.ModelLoader;
import dev.longspan.model.Transformer;
import dev.longspan.train.PasskeyTask;
import dev.longspan.util.LongspanException;
import org.knowm.xchart.HeatMapChart;
import org.knowm.xchart.HeatMapChartBuilder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

@Command(name = "passkey", mixinStandardHelpOptions = true,
        description = "Passkey retrieval accuracy over prompt lengths × needle depths (table, results JSON, heatmap PNG).")
final class PasskeyCommand implements Runnable {
    @Option(names = "--model", required = true, paramLabel = "PATH",
            description = "A GGUF file, a Hugging Face safetensors directory or a Longspan model directory.") Path model;
    @Option(names = "--lengths", paramLabel = "L,...", description = "Prompt lengths in tokens (default: ${DEFAULT-VALUE}).")
    String lengths = "1k,4k,16k";
    @Option(names = "--depths", paramLabel = "D,...", split = ",", description = "Needle depths in [0,1] (default: 0,0.25,0.5,0.75,1).")
    List<Double> depths = List.of(0.0, 0.25, 0.5, 0.75, 1.0);
    @Option(names = "--trials", paramLabel = "N", description = "Trials per cell (default: ${DEFAULT-VALUE}).") int trials = 1;
    @Option(names = "--filler", paramLabel = "FILE", description = "Haystack text instead of the repeated standard filler.") Path filler;
    @Option(names = "--seed", paramLabel = "S") long seed = 1;
    @Option(names = "--attention", paramLabel = "SPEC", description = "Override the attention plan.") String attention;
    @Option(names = "--rope", paramLabel = "SPEC", description = "Override the RoPE config.") String rope;
    @Option(names = "--out", paramLabel = "DIR", description = "Where passkey.json and passkey.png go (default: the model directory).") Path out;
    @Option(names = "--json", description = "Print one JSON object on standard output.") boolean json;
    @Option(names = "--kv", paramLabel = "f32|f16", description = "KV cache precision (default: ${DEFAULT-VALUE}).") String kv = "f32";
    @Option(names = "--logn", paramLabel = "L", description = "Log-n attention scaling beyond L tokens (0 = off; default: ${DEFAULT-VALUE}).") int logn = 0;
    @Mixin Main.ComputeOptions compute;

    @Override
    public void run() {
        compute.apply();
        int[] ls = Sizes.parseList(lengths, "--lengths");
        double[] ds = depths.stream().mapToDouble(Double::doubleValue).toArray();
        for (double d : ds) if (d < 0 || d > 1) throw new LongspanException("--depths: " + d + " is outside [0, 1]");
        ModelLoader.LoadedModel lm = ModelLoading.load(model, attention, rope);
        Transformer m = lm.model();
        int[] fillerTokens = fillerTokens(lm.tokenizer(), filler);
        List<PasskeyEval.Cell> cells = PasskeyEval.run(m, lm.tokenizer(), ls, ds, trials, fillerTokens, seed, KvFlag.options(kv, logn), (t, done, total) ->
                System.err.printf("[%d/%d] length %s depth %.2f: %s (%s) %.1fs%n", done, total, Sizes.format(t.length()), t.depth(),
                        t.correct() ? "ok" : "WRONG", t.answer(), t.seconds()));
        Path dir = out != null ? out : ModelLoading.defaultOut(model);
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("model", model.toString());
        result.put("attention", m.config.attention());
        result.put("rope", m.config.rope());
        List<Map<String, Object>> rows = new ArrayList<>();
        int correct = 0, count = 0;
        for (PasskeyEval.Cell c : cells) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("length", c.length()); r.put("depth", c.depth()); r.put("trials", c.trials()); r.put("correct", c.correct());
            r.put("accuracy", c.accuracy()); r.put("mean_seconds", c.meanSeconds()); r.put("peak_heap_bytes", c.peakBytes());
            rows.add(r);
            correct += c.correct(); count += c.trials();
        }
        result.put("cells", rows);
        result.put("accuracy", (double) correct / count);
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new LongspanException(dir + ": cannot create: " + e.getMessage());
        }
        dev.longspan.io.AtomicFiles.writeString(dir.resolve("passkey.json"), dev.longspan.io.Json.writePretty(result));
        heatmap(dir.resolve("passkey.png"), ls, ds, cells);
        result.put("files", List.of(dir.resolve("passkey.json").toString(), dir.resolve("passkey.png").toString()));
        if (json) {
            Json.print(result);
            return;
        }
        StringBuilder head = new StringBuilder(String.format("%-8s", "length"));
        for (double d : ds) head.append(String.format(" %6.2f", d));
        System.out.println(head.append("   (accuracy by needle depth)"));
        for (int L : ls) {
            StringBuilder line = new StringBuilder(String.format("%-8s", Sizes.format(L)));
            for (PasskeyEval.Cell c : cells) if (c.length() == L) line.append(String.format(" %5.0f%%", 100 * c.accuracy()));
            System.out.println(line);
        }
        System.out.printf("overall %d/%d correct; %s, %s%n", correct, count, dir.resolve("passkey.json"), dir.resolve("passkey.png"));
    }

    /** The haystack in the model's tokens: the standard filler sentence, or a file's text (its bytes for byte-level models). */
    static int[] fillerTokens(dev.longspan.io.Tokenizer tok, Path file) {
        if (file == null) return tok.encode(PasskeyTask.FILLER);
        byte[] text;
        try {
            text = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new LongspanException(file + ": cannot read: " + dev.longspan.io.IoErrors.reason(e));
        }
        if (text.length == 0) throw new LongspanException(file + ": the filler file is empty");
        if (tok instanceof dev.longspan.io.ByteTokenizer) return dev.longspan.io.ByteTokenizer.encodeBytes(text, 0, text.length);
        return tok.encode(new String(text, java.nio.charset.StandardCharsets.UTF_8));
    }

    static PasskeyTask.Filler fileFiller(Path p) {
        byte[] text;
        try {
            text = Files.readAllBytes(p);
        } catch (IOException e) {
            throw new LongspanException(p + ": cannot read: " + dev.longspan.io.IoErrors.reason(e));
        }
        if (text.length == 0) throw new LongspanException(p + ": the filler file is empty");
        return (dst, from, n) -> {
            for (int i = 0; i < n; i++) dst[from + i] = text[i % text.length];
        };
    }

    static void heatmap(Path png, int[] ls, double[] ds, List<PasskeyEval.Cell> cells) {
        HeatMapChart chart = new HeatMapChartBuilder().width(700).height(450).title("Passkey retrieval accuracy")
                .xAxisTitle("context length").yAxisTitle("needle depth").build();
        List<String> xs = new ArrayList<>();
        for (int L : ls) xs.add(Sizes.format(L));
        List<String> ys = new ArrayList<>();
        for (double d : ds) ys.add(String.format("%.2f", d));
        List<Number[]> data = new ArrayList<>();
        for (int i = 0; i < ls.length; i++)
            for (int j = 0; j < ds.length; j++)
                for (PasskeyEval.Cell c : cells)
                    if (c.length() == ls[i] && c.depth() == ds[j]) data.add(new Number[]{i, j, Math.round(100 * c.accuracy())});
        chart.getStyler().setMin(0).setMax(100).setShowValue(true);
        chart.getStyler().setRangeColors(new java.awt.Color[]{new java.awt.Color(200, 40, 40), new java.awt.Color(240, 200, 60), new java.awt.Color(40, 160, 70)});
        chart.addSeries("accuracy %", xs, ys, data);
        Plots.write(png, chart);
    }
}

package dev.longspan.cli;

import dev.longspan.eval.PasskeyEval;
import dev.longspan.format.ModelLoader;
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
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--model", required = true, paramLabel = "PATH",
            description = "A GGUF file, a Hugging Face safetensors directory or a Longspan model directory.") Path model;
    @Option(names = "--lengths", paramLabel = "L,...", description = "Prompt lengths in tokens (default: ${DEFAULT-VALUE}).")
    String lengths = "1k,4k,16k";
    @Option(names = "--depths", paramLabel = "D", split = ",", description = "Needle depths in [0,1] (default: 0,0.25,0.5,0.75,1).")
    List<Double> depths = List.of(0.0, 0.25, 0.5, 0.75, 1.0);
    @Option(names = "--trials", paramLabel = "N", description = "Trials per cell (default: ${DEFAULT-VALUE}).") int trials = 1;
    @Option(names = "--filler", paramLabel = "FILE", description = {"Haystack text instead of the repeated standard filler.",
            "The whole file is used: each trial reads its haystack from its own offset in the file (drawn from --seed, the length, "
                    + "the depth and the trial), the text after the needle continuing where the text before it stopped; "
                    + "a file shorter than the prompt wraps around."}) Path filler;
    @Option(names = "--seed", paramLabel = "S", description = "Seed of the keys and of the --filler offsets (default: ${DEFAULT-VALUE}).") long seed = 1;
    @Option(names = "--out", paramLabel = "DIR", description = "Where passkey.json and passkey.png go, relative to the current directory (default: ${DEFAULT-VALUE}).")
    Path out = Path.of("runs/passkey");
    @Option(names = "--json", description = "Print one JSON object on standard output.") boolean json;
    @Mixin Main.ComputeOptions compute;

    @Override
    public void run() {
        compute.apply();
        int[] ls = Sizes.parseList(lengths, "--lengths");
        double[] ds = depths.stream().mapToDouble(Double::doubleValue).toArray();
        for (double d : ds) if (d < 0 || d > 1) throw new LongspanException("--depths: " + d + " is outside [0, 1]");
        dev.longspan.io.AtomicFiles.checkWritableDirectory(out);
        ModelLoader.LoadedModel lm = modelOptions.load(model);
        Transformer m = lm.model();
        dev.longspan.model.InferenceOptions options = modelOptions.inference(m.config);
        List<PasskeyEval.Cell> cells = PasskeyEval.run(m, lm.tokenizer(), ls, ds, trials, haystack(lm.tokenizer(), filler), seed, options, (t, done, total) ->
                System.err.printf("[%d/%d] length %s depth %.2f: %s %.1fs%n", done, total, Sizes.format(t.length()), t.depth(),
                        t.correct() ? "ok (" + t.answer() + ")" : "WRONG (answered " + t.answer() + ", the key is " + t.key() + ")", t.seconds()));
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("model", model.toString());
        result.put("attention", m.config.attentionSpecs());
        result.put("rope", m.config.rope().toSpec());
        result.put("logn", options.lognLength());
        List<Map<String, Object>> rows = new ArrayList<>();
        int correct = 0, count = 0;
        for (PasskeyEval.Cell c : cells) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("length", c.length()); r.put("depth", c.depth()); r.put("trials", c.trials()); r.put("correct", c.correct());
            r.put("accuracy", c.accuracy()); r.put("mean_seconds", c.meanSeconds()); r.put("peak_heap_bytes", c.peakBytes());
            List<Map<String, Object>> trials = new ArrayList<>();   // each key and what the model answered
            for (PasskeyEval.Trial t : c.results()) {
                Map<String, Object> tr = new LinkedHashMap<>();
                tr.put("key", t.key()); tr.put("answer", t.answer()); tr.put("correct", t.correct()); tr.put("seconds", t.seconds());
                // where in the --filler text (in tokens) this trial's haystack starts: with the key, length
                // and depth it rebuilds the prompt exactly (0 for the standard filler)
                tr.put("filler_offset", t.fillerOffset());
                trials.add(tr);
            }
            r.put("results", trials);
            rows.add(r);
            correct += c.correct(); count += c.trials();
        }
        result.put("cells", rows);
        result.put("accuracy", (double) correct / count);
        // results that cannot be saved are still printed: the evaluation is not thrown away
        LongspanException unsaved = null;
        try {
            dev.longspan.io.AtomicFiles.writeString(out.resolve("passkey.json"), dev.longspan.io.Json.writePretty(result));
            heatmap(out.resolve("passkey.png"), ls, ds, cells);
            result.put("files", List.of(out.resolve("passkey.json").toString(), out.resolve("passkey.png").toString()));
        } catch (LongspanException e) {
            unsaved = e;
        }
        if (json) {
            Json.print(result);
            if (unsaved != null) throw unsaved;
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
        System.out.printf("overall %d/%d correct%s%n", correct, count, unsaved != null ? "" : "; " + out.resolve("passkey.json") + ", " + out.resolve("passkey.png"));
        if (unsaved != null) throw unsaved;
    }

    /** The haystack in the model's tokens: the standard filler sentence, or a file's text (its bytes for byte-level models). */
    static PasskeyEval.Haystack haystack(dev.longspan.io.Tokenizer tok, Path file) {
        if (file == null) return PasskeyEval.Haystack.repeated(tok.encode(PasskeyTask.FILLER));
        byte[] text;
        try {
            text = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new LongspanException(file + ": cannot read: " + dev.longspan.io.IoErrors.reason(e));
        }
        if (text.length == 0) throw new LongspanException(file + ": the filler file is empty");
        return PasskeyEval.Haystack.text(tok instanceof dev.longspan.io.ByteTokenizer ? dev.longspan.io.ByteTokenizer.encodeBytes(text, 0, text.length)
                : tok.encode(new String(text, java.nio.charset.StandardCharsets.UTF_8)));
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

package dev.longspan.cli;

import dev.longspan.eval.PerplexityEval;
import dev.longspan.io.ByteTokenizer;
import dev.longspan.model.InferenceOptions;
import dev.longspan.model.ModelLoader;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;
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
        description = {"Perplexity of a text against context length, with a curve PNG.",
                "The same tokens are scored at every length: --windows spans of --tail tokens, evenly spaced over the text and",
                "ending at the same positions for every length; each length feeds the L tokens that end there as context, so",
                "the lengths differ only in how much text precedes the scored tokens."})
final class PerplexityCommand implements Runnable {
    @Option(names = "--model", required = true, paramLabel = "PATH",
            description = "A GGUF file, a Hugging Face safetensors directory or a Longspan model directory.") Path model;
    @Option(names = "--data", required = true, paramLabel = "FILE", description = "The text to score (UTF-8).") Path data;
    @Option(names = "--lengths", paramLabel = "L,...", description = "Context lengths (default: ${DEFAULT-VALUE}).") String lengths = "256,1k,4k";
    @Option(names = "--tail", paramLabel = "K", description = "Tokens scored in each window, at most the shortest length (default: ${DEFAULT-VALUE}).") int tail = 128;
    @Option(names = "--windows", paramLabel = "W", description = "Scored windows, fewer when the text is short (default: ${DEFAULT-VALUE}).") int windows = 4;
    @Option(names = "--attention", paramLabel = "SPEC", description = "Override the attention plan.") String attention;
    @Option(names = "--rope", paramLabel = "SPEC", description = "Override the RoPE config.") String rope;
    @Option(names = "--out", paramLabel = "DIR", description = "Where perplexity.json and perplexity.png go, relative to the current directory (default: ${DEFAULT-VALUE}).")
    Path out = Path.of("runs/perplexity");
    @Option(names = "--json", description = "Print one JSON object on standard output.") boolean json;
    @Option(names = "--kv", paramLabel = "f32|f16", description = "KV cache precision (default: ${DEFAULT-VALUE}).") String kv = "f32";
    @Option(names = "--logn", paramLabel = "L", description = KvFlag.LOGN_DESCRIPTION) Integer logn;
    @Mixin Main.ComputeOptions compute;

    @Override
    public void run() {
        compute.apply();
        if (tail < 1) throw new LongspanException("--tail must be at least 1");
        if (windows < 1) throw new LongspanException("--windows must be at least 1");
        int[] ls = Sizes.parseList(lengths, "--lengths");
        dev.longspan.io.AtomicFiles.checkWritableDirectory(out);
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
        InferenceOptions options = KvFlag.options(kv, logn, m.config);
        List<PerplexityEval.Point> pts = PerplexityEval.run(m, tokens, ls, tail, windows, options,
                (L, w, n) -> System.err.printf("length %s: window %d/%d%n", Sizes.format(L), w, n));
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("model", model.toString());
        result.put("data", data.toString());
        result.put("tail", tail);
        result.put("tokenizer", lm.tokenizer().describe());
        result.put("bytes_per_token", bytesPerToken);
        result.put("logn", options.lognLength());
        List<Map<String, Object>> rows = new ArrayList<>();
        for (PerplexityEval.Point p : pts) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("length", p.length()); r.put("windows", p.windows()); r.put("tokens_scored", p.tokensScored());
            r.put("loss", p.loss()); r.put("perplexity", p.perplexity()); r.put("bits_per_byte", p.loss() / Math.log(2) / bytesPerToken); r.put("seconds", p.seconds());
            rows.add(r);
        }
        result.put("points", rows);
        String series = Plots.planLabel(m.config.attention()) + (options.lognLength() > 0 ? ", log-n " + options.lognLength() : "");
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
        System.out.printf("%-8s %10s %10s %8s%n", "length", "perplexity", "bits/byte", "seconds");
        for (PerplexityEval.Point p : pts) System.out.printf("%-8s %10.3f %10.3f %8.1f%n", Sizes.format(p.length()), p.perplexity(), p.loss() / Math.log(2) / bytesPerToken, p.seconds());
        if (unsaved != null) throw unsaved;
        System.out.println("wrote " + out.resolve("perplexity.json") + " and " + out.resolve("perplexity.png"));
    }
}

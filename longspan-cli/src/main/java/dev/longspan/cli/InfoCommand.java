package dev.longspan.cli;

import dev.longspan.model.ModelConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

@Command(name = "info", mixinStandardHelpOptions = true, description = "Print a model's config, parameter count and per-layer attention plan.")
final class InfoCommand implements Runnable {
    @Parameters(index = "0", paramLabel = "PATH", description = "A GGUF file, a Hugging Face safetensors directory or a Longspan model directory.")
    Path dir;

    @Option(names = "--json", description = "Print one JSON object on standard output.")
    boolean json;

    @Override
    public void run() {
        ModelConfig c = dev.longspan.format.ModelLoader.config(dir);
        TrainedLengths trained = TrainedLengths.of(dir);
        Map<String, Integer> types = ggufTensorTypes(dir);
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>(c.toJson());
            m.put("parameters", c.parameterCount());
            m.put("trained_seq_len", trained == null ? null : Map.of("min", trained.min(), "max", trained.max(), "steps", trained.steps()));
            if (types != null) m.put("tensor_types", types);
            Json.print(m);
            return;
        }
        System.out.printf("model       %s%n", dir);
        System.out.printf("parameters  %,d%n", c.parameterCount());
        System.out.printf("shape       %d layers, dim %d, %d heads (%d kv) x %d, ffn %d, vocab %d%s%n", c.layers(), c.dim(), c.heads(),
                c.kvHeads(), c.headDim(), c.ffnDim(), c.vocabSize(), c.tiedEmbeddings() ? ", tied embeddings" : "");
        System.out.printf("rope        %s%n", c.rope());
        System.out.printf("tokenizer   %s%n", c.tokenizer());
        System.out.printf("context     %d tokens (config context_length)%n", c.contextLength());
        if (types != null) {
            StringBuilder b = new StringBuilder();
            types.forEach((t, n) -> b.append(b.isEmpty() ? "" : ", ").append(t).append(" ×").append(n));
            System.out.printf("tensors     %s%n", b);
        }
        System.out.printf("trained on  %s%n", trained == null ? "unknown (no metrics.jsonl beside the model)"
                : String.format("sequences of %s tokens (metrics.jsonl, %,d steps)",
                        trained.min() == trained.max() ? Integer.toString(trained.max()) : trained.min() + " to " + trained.max(), trained.steps()));
        if (c.tokenShift() == 1) System.out.printf("token shift each position's input adds an embedding of its previous token (token_shift)%n");
        else if (c.shifted()) System.out.printf("token shift each position's input adds embeddings of its %d previous tokens (token_shift)%n", c.tokenShift());
        if (c.logn() > 0) System.out.printf("log-n       queries beyond %d tokens scaled by ln(p)/ln(%d)%n", c.logn(), c.logn());
        System.out.println("attention plan:");
        for (int l = 0; l < c.layers(); l++) System.out.printf("  layer %2d  %s%n", l, c.attention().get(l).spec());
    }

    /** A GGUF file's tensors counted by stored type, most first (ties by name); null for other formats. */
    static Map<String, Integer> ggufTensorTypes(Path path) {
        if (!java.nio.file.Files.isRegularFile(path)) return null;
        try (dev.longspan.io.GgufFile g = dev.longspan.io.GgufFile.open(path)) {
            Map<String, Integer> count = new java.util.TreeMap<>();
            for (dev.longspan.io.GgufFile.Tensor t : g.tensors().values()) count.merge(t.type().name(), 1, Integer::sum);
            Map<String, Integer> out = new LinkedHashMap<>();
            count.entrySet().stream().sorted((a, b) -> b.getValue() - a.getValue()).forEach(e -> out.put(e.getKey(), e.getValue()));
            return out;
        }
    }

    /**
     * The sequence lengths the model was trained on, from the run's metrics.jsonl (one line per
     * step with its seq_len), or null when the directory holds no such record.
     */
    record TrainedLengths(int min, int max, long steps) {
        static TrainedLengths of(Path model) {
            Path metrics = model.resolve("metrics.jsonl");
            if (!java.nio.file.Files.isRegularFile(metrics)) return null;
            int min = Integer.MAX_VALUE, max = 0;
            long steps = 0;
            try (var lines = java.nio.file.Files.lines(metrics)) {
                for (String line : (Iterable<String>) lines::iterator) {
                    if (line.isBlank()) continue;
                    if (dev.longspan.io.Json.parseObject(line, metrics.toString()).get("seq_len") instanceof Number n) {
                        min = Math.min(min, n.intValue());
                        max = Math.max(max, n.intValue());
                        steps++;
                    }
                }
            } catch (java.io.IOException | java.io.UncheckedIOException e) {
                throw new dev.longspan.util.LongspanException(metrics + ": cannot read: " + e.getMessage());
            }
            return steps == 0 ? null : new TrainedLengths(min, max, steps);
        }
    }
}

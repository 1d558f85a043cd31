package dev.longspan.cli;

import dev.longspan.format.GgufExport;
import dev.longspan.format.LongspanFormat;
import dev.longspan.kernel.GgmlType;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

@Command(name = "export", mixinStandardHelpOptions = true,
        description = {"Write a Longspan model directory as a llama GGUF file.",
                "The file loads in llama.cpp: byte vocabulary, Q and K permuted for its interleaved RoPE."})
final class ExportCommand implements Runnable {
    @Option(names = "--model", paramLabel = "DIR", description = "A Longspan model directory.") Path model;
    @Option(names = "--random", paramLabel = "CONFIG.json",
            description = "Instead of --model: a model of this config's shape with random weights, written tensor by tensor (a benchmark model; may be larger than memory).") Path random;
    @Option(names = "--seed", paramLabel = "S", description = "Seed of --random (default: ${DEFAULT-VALUE}).") long seed = 1;
    @Option(names = "--out", required = true, paramLabel = "FILE.gguf", description = "The GGUF file to write.") Path out;
    @Option(names = "--type", paramLabel = "T", description = "Type of the weight matrices: f32, f16, q8_0, q4_0 or q4_k (default: ${DEFAULT-VALUE}).") String type = "f32";
    @Option(names = "--name", paramLabel = "NAME", description = "general.name (default: the directory name).") String name;
    @Option(names = "--merge-adapter", paramLabel = "DIR",
            description = "Merge this PEFT LoRA adapter into --model's weights (W + alpha/r·B·A) before writing.") Path mergeAdapter;
    @Option(names = "--json", description = "Print one JSON object on standard output.") boolean json;

    @Override
    public void run() {
        GgmlType t = switch (type.toLowerCase(Locale.ROOT)) {
            case "f32" -> GgmlType.F32;
            case "f16" -> GgmlType.F16;
            case "q8_0" -> GgmlType.Q8_0;
            case "q4_0" -> GgmlType.Q4_0;
            case "q4_k" -> GgmlType.Q4_K;
            default -> throw new LongspanException("--type must be f32, f16, q8_0, q4_0 or q4_k, got '" + type + "'");
        };
        if ((model == null) == (random == null)) throw new LongspanException("give either --model DIR or --random CONFIG.json");
        if (mergeAdapter != null && random != null) throw new LongspanException("--merge-adapter needs --model DIR (a random model has no adapter)");
        ModelConfig c;
        if (random != null) {
            c = ModelConfig.read(random);
            dev.longspan.io.AtomicFiles.checkWritable(out);
            String n = name != null ? name : "random " + String.valueOf(random.getFileName()).replaceFirst("\\.json$", "");
            GgufExport.exportRandom(c, out, n, t, seed);
        } else {
            Transformer m = LongspanFormat.read(model);
            if (mergeAdapter != null) m = dev.longspan.format.PeftAdapter.apply(mergeAdapter, m).mergedAdapters();
            c = m.config;
            dev.longspan.io.AtomicFiles.checkWritable(out);
            String n = name != null ? name : String.valueOf(model.toAbsolutePath().normalize().getFileName());
            GgufExport.export(m, out, n, t);
        }
        if (json) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("model", String.valueOf(model != null ? model : random));
            r.put("out", out.toString());
            r.put("type", t.name());
            r.put("parameters", c.parameterCount());
            if (mergeAdapter != null) r.put("merged_adapter", mergeAdapter.toString());
            Json.print(r);
        } else {
            System.out.printf("wrote %s (llama, %s, %,d parameters%s)%n", out, t, c.parameterCount(),
                    random != null ? ", random weights" : mergeAdapter != null ? ", adapter " + mergeAdapter + " merged" : "");
        }
    }
}

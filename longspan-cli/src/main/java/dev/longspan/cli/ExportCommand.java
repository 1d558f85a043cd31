package dev.longspan.cli;

import dev.longspan.kernel.GgmlType;
import dev.longspan.model.GgufExport;
import dev.longspan.model.Transformer;
import dev.longspan.train.Checkpoint;
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
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "A Longspan model directory.") Path model;
    @Option(names = "--out", required = true, paramLabel = "FILE.gguf", description = "The GGUF file to write.") Path out;
    @Option(names = "--type", paramLabel = "T", description = "Type of the weight matrices: f32, f16 or q8_0 (default: ${DEFAULT-VALUE}).") String type = "f32";
    @Option(names = "--name", paramLabel = "NAME", description = "general.name (default: the directory name).") String name;
    @Option(names = "--json", description = "Print one JSON object on standard output.") boolean json;

    @Override
    public void run() {
        GgmlType t = switch (type.toLowerCase(Locale.ROOT)) {
            case "f32" -> GgmlType.F32;
            case "f16" -> GgmlType.F16;
            case "q8_0" -> GgmlType.Q8_0;
            default -> throw new LongspanException("--type must be f32, f16 or q8_0, got '" + type + "'");
        };
        Transformer m = Checkpoint.loadModel(model);
        dev.longspan.io.AtomicFiles.checkWritable(out);
        String n = name != null ? name : String.valueOf(model.toAbsolutePath().normalize().getFileName());
        GgufExport.export(m, out, n, t);
        if (json) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("model", model.toString());
            r.put("out", out.toString());
            r.put("type", t.name());
            r.put("parameters", m.config.parameterCount());
            Json.print(r);
        } else {
            System.out.printf("wrote %s (llama, %s, %,d parameters)%n", out, t, m.config.parameterCount());
        }
    }
}

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
        ModelConfig c = dev.longspan.model.ModelLoader.config(dir);
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>(c.toJson());
            m.put("parameters", c.parameterCount());
            Json.print(m);
            return;
        }
        System.out.printf("model       %s%n", dir);
        System.out.printf("parameters  %,d%n", c.parameterCount());
        System.out.printf("shape       %d layers, dim %d, %d heads (%d kv) x %d, ffn %d, vocab %d%s%n", c.layers(), c.dim(), c.heads(),
                c.kvHeads(), c.headDim(), c.ffnDim(), c.vocabSize(), c.tiedEmbeddings() ? ", tied embeddings" : "");
        System.out.printf("rope        %s%n", c.rope());
        System.out.printf("tokenizer   %s%n", c.tokenizer());
        System.out.printf("trained at  %d tokens%n", c.contextLength());
        System.out.println("attention plan:");
        for (int l = 0; l < c.layers(); l++) System.out.printf("  layer %2d  %s%n", l, c.attention().get(l));
    }
}

package dev.longspan.cli;

import dev.longspan.eval.MemoryEstimate;
import dev.longspan.io.Tokenizer;
import dev.longspan.model.InferenceOptions;
import dev.longspan.model.InferenceSession;
import dev.longspan.model.ModelLoader;
import dev.longspan.model.Sampler;
import dev.longspan.util.Heap;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text from a prompt with a KV cache; attention and RoPE can be overridden for training-free context extension.")
final class GenerateCommand implements Runnable {
    @Option(names = "--model", required = true, paramLabel = "PATH",
            description = "A GGUF file, a Hugging Face safetensors directory or a Longspan model directory.")
    Path model;

    @Option(names = "--raw", description = "Feed the prompt as is, without the model's chat template.")
    boolean raw;

    @Option(names = "--prompt", required = true, paramLabel = "TEXT")
    String prompt;

    @Option(names = "--max-tokens", paramLabel = "N", description = "Tokens to generate (default: ${DEFAULT-VALUE}).")
    int maxTokens = 128;

    @Option(names = "--temperature", paramLabel = "X", description = "0 = greedy (default: ${DEFAULT-VALUE}).")
    float temperature = 0.8f;

    @Option(names = "--top-p", paramLabel = "P", description = "Nucleus sampling mass (default: ${DEFAULT-VALUE}).")
    float topP = 0.95f;

    @Option(names = "--seed", paramLabel = "S", description = "Sampling seed (default: ${DEFAULT-VALUE}).")
    long seed = 1;

    @Option(names = "--attention", paramLabel = "SPEC", description = "Attention pattern for every layer, or a masformer|... plan.")
    String attention;

    @Option(names = "--rope", paramLabel = "SPEC", description = "RoPE override, e.g. kind=yarn,factor=8,orig=4096.")
    String rope;

    @Option(names = "--json", description = "Print one JSON object on standard output.")
    boolean json;

    @Option(names = "--kv", paramLabel = "f32|f16", description = "KV cache precision (default: ${DEFAULT-VALUE}).") String kv = "f32";
    @Option(names = "--logn", paramLabel = "L", description = "Log-n attention scaling beyond L tokens (0 = off; default: ${DEFAULT-VALUE}).") int logn = 0;
    @Mixin
    Main.ComputeOptions compute;

    @Override
    public void run() {
        compute.apply();
        if (maxTokens < 0) throw new LongspanException("--max-tokens must be ≥ 0, got " + maxTokens);
        if (!Float.isFinite(temperature) || temperature < 0) throw new LongspanException("--temperature must be a number ≥ 0, got " + temperature);
        Sampler sampler = new Sampler(temperature, topP, seed);
        ModelLoader.LoadedModel lm = ModelLoading.load(model, attention, rope);
        Tokenizer tok = lm.tokenizer();
        if (prompt.isEmpty()) throw new LongspanException("--prompt is empty");
        int[] ids = lm.promptIds(prompt, raw);
        if (ids.length == 0) throw new LongspanException("--prompt is empty");
        InferenceOptions options = KvFlag.options(kv, logn);
        long capacity = (long) ids.length + maxTokens;
        if (capacity > Heap.MAX_ARRAY) throw new LongspanException("--max-tokens " + maxTokens + ": a context of " + capacity + " tokens is more than Longspan can index");
        MemoryEstimate.requireInference(lm.model().config, (int) capacity, ids.length, 1, options.halfKv(),
                "a context of " + capacity + " tokens (--prompt and --max-tokens)");
        InferenceSession s = new InferenceSession(lm.model(), (int) capacity, options);
        long t0 = System.nanoTime();
        float[] logits = s.feed(ids, 0, ids.length);
        double prefill = (System.nanoTime() - t0) / 1e9;
        int[] gen = new int[maxTokens];
        int generated = 0, printed = 0;
        String stopReason = "max_tokens";
        long t1 = System.nanoTime();
        int[] one = new int[1];
        while (generated < maxTokens) {
            int next = sampler.next(logits);
            if (lm.isStop(next)) { stopReason = "stop_token"; break; }
            gen[generated++] = next;
            if (!json) printed = stream(tok.decode(gen, 0, generated), printed);
            if (generated == maxTokens) break;
            one[0] = next;
            logits = s.feed(one, 0, 1);
        }
        double decode = (System.nanoTime() - t1) / 1e9;
        String text = tok.decode(gen, 0, generated);
        if (json) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("model", model.toString());
            r.put("format", lm.format().name().toLowerCase(java.util.Locale.ROOT));
            r.put("chat_template", raw ? "none" : lm.chat().id);
            r.put("prompt_tokens", ids.length);
            r.put("generated_tokens", generated);
            r.put("stop", stopReason);
            r.put("text", text);
            r.put("prefill_tokens_per_s", ids.length / prefill);
            r.put("decode_tokens_per_s", generated / Math.max(decode, 1e-9));
            Json.print(r);
        } else {
            if (text.length() > printed) System.out.print(text.substring(printed));
            System.out.println();
            System.err.printf("%d prompt tokens (%.0f tok/s), %d generated (%.1f tok/s)%n", ids.length, ids.length / prefill,
                    generated, generated / Math.max(decode, 1e-9));
        }
    }

    // prints the decoded text past what was printed, holding back a trailing incomplete character (U+FFFD)
    private static int stream(String text, int printed) {
        int end = text.length();
        while (end > printed && text.charAt(end - 1) == '\uFFFD') end--;
        if (end > printed) {
            System.out.print(text.substring(printed, end));
            System.out.flush();
            return end;
        }
        return printed;
    }
}

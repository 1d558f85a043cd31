package dev.longspan.cli;

import dev.longspan.io.ByteTokenizer;
import dev.longspan.io.Tokenizer;
import dev.longspan.model.AttentionPlan;
import dev.longspan.model.InferenceSession;
import dev.longspan.model.Sampler;
import dev.longspan.model.Transformer;
import dev.longspan.train.Checkpoint;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text from a prompt with a KV cache; attention and RoPE can be overridden for training-free context extension.")
final class GenerateCommand implements Runnable {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "A Longspan model directory.")
    Path model;

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
    @Mixin
    Main.ComputeOptions compute;

    @Override
    public void run() {
        compute.apply();
        if (maxTokens < 0) throw new LongspanException("--max-tokens must be ≥ 0, got " + maxTokens);
        Sampler sampler = new Sampler(temperature, topP, seed);
        Transformer m = Checkpoint.loadModel(model);
        if (attention != null) m = withConfig(m, m.config.withAttention(AttentionPlan.expand(attention, m.config.layers(), "--attention")));
        if (rope != null) m = withConfig(m, m.config.withRope(rope));
        Tokenizer tok = ByteTokenizer.INSTANCE;
        int[] ids = tok.encode(prompt);
        if (ids.length == 0) throw new LongspanException("--prompt is empty");
        InferenceSession s = new InferenceSession(m, ids.length + maxTokens, KvFlag.half(kv));
        long t0 = System.nanoTime();
        float[] logits = s.feed(ids, 0, ids.length);
        double prefill = (System.nanoTime() - t0) / 1e9;
        ByteArrayOutputStream outBytes = new ByteArrayOutputStream();
        int printed = 0;
        int generated = 0;
        long t1 = System.nanoTime();
        int[] one = new int[1];
        for (; generated < maxTokens; ) {
            int next = sampler.next(logits);
            if (next == tok.eosId()) break;
            outBytes.writeBytes(tok.tokenBytes(next));
            generated++;
            if (!json) printed = streamValidUtf8(outBytes.toByteArray(), printed);
            if (generated == maxTokens) break;
            one[0] = next;
            logits = s.feed(one, 0, 1);
        }
        double decode = (System.nanoTime() - t1) / 1e9;
        String text = outBytes.toString(StandardCharsets.UTF_8);
        if (json) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("prompt_tokens", ids.length);
            r.put("generated_tokens", generated);
            r.put("text", text);
            r.put("prefill_tokens_per_s", ids.length / prefill);
            r.put("decode_tokens_per_s", generated / Math.max(decode, 1e-9));
            Json.print(r);
        } else {
            System.out.print(new String(outBytes.toByteArray(), printed, outBytes.size() - printed, StandardCharsets.UTF_8));
            System.out.println();
            System.err.printf("%d prompt tokens (%.0f tok/s), %d generated (%.1f tok/s)%n", ids.length, ids.length / prefill,
                    generated, generated / Math.max(decode, 1e-9));
        }
    }

    private static Transformer withConfig(Transformer m, dev.longspan.model.ModelConfig c) {
        Transformer t = new Transformer(c);
        System.arraycopy(m.params, 0, t.params, 0, m.params.length);
        return t;
    }

    // prints the longest prefix of new bytes that ends on a UTF-8 character boundary
    private static int streamValidUtf8(byte[] all, int from) {
        int end = all.length;
        int k = end - 1, cont = 0;
        while (k >= from && (all[k] & 0xC0) == 0x80) { k--; cont++; }
        if (k >= from) {
            int lead = all[k] & 0xff;
            int need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
            if (need > cont) end = k;
        }
        if (end > from) {
            System.out.print(new String(all, from, end - from, StandardCharsets.UTF_8));
            System.out.flush();
        }
        return Math.max(from, end);
    }
}

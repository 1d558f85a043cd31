package dev.longspan.cli;

import dev.longspan.model.MemoryEstimate;
import dev.longspan.io.Tokenizer;
import dev.longspan.model.ChatFormat;
import dev.longspan.format.ChatPrompts;
import dev.longspan.model.ChatTemplate;
import dev.longspan.model.Generator;
import dev.longspan.model.InferenceOptions;
import dev.longspan.model.InferenceSession;
import dev.longspan.format.ModelLoader;
import dev.longspan.model.Sampler;
import dev.longspan.util.Heap;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text from a prompt with a KV cache; attention and RoPE can be overridden for training-free context extension.")
final class GenerateCommand implements Runnable {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--model", required = true, paramLabel = "PATH",
            description = "A GGUF file, a Hugging Face safetensors directory or a Longspan model directory.")
    Path model;

    @Option(names = "--raw", description = "Feed the prompt as is, without the model's chat template.")
    boolean raw;

    @picocli.CommandLine.ArgGroup(exclusive = true, multiplicity = "1")
    PromptSource source;

    /** The prompt as an argument or from a file (one of them). */
    static final class PromptSource {
        @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "The prompt (in the model's chat template unless --raw).")
        String text;

        @Option(names = "--prompt-file", required = true, paramLabel = "FILE",
                description = "Read the prompt from a UTF-8 text file instead (long prompts, such as a rebuilt passkey prompt).")
        Path file;
    }

    String prompt;

    @Option(names = "--system", paramLabel = "TEXT", description = "A system turn before the prompt (rendered by the model's chat template; not with --raw).")
    String system;

    @Option(names = "--chat-template-kwargs", paramLabel = "JSON",
            description = "Extra variables for the model's chat template, a JSON object, e.g. '{\"enable_thinking\": false}' (Qwen3; not with --raw).")
    String templateKwargs;

    @Option(names = "--max-tokens", paramLabel = "N", description = "Tokens to generate (default: ${DEFAULT-VALUE}).")
    int maxTokens = 128;

    @Option(names = "--temperature", paramLabel = "X", description = "0 = greedy (default: ${DEFAULT-VALUE}).")
    float temperature = 0.8f;

    @Option(names = "--top-p", paramLabel = "P", description = "Nucleus sampling mass (default: ${DEFAULT-VALUE}).")
    float topP = 0.95f;

    @Option(names = "--top-k", paramLabel = "K", description = "Sample from the K most likely tokens only, 0 = off (default: ${DEFAULT-VALUE}).")
    int topK = 0;

    @Option(names = "--min-p", paramLabel = "P", description = "Drop tokens less than P times as likely as the most likely one, 0 = off (default: ${DEFAULT-VALUE}).")
    float minP = 0f;

    @Option(names = "--frequency-penalty", paramLabel = "F", description = "Lower each token's logit by F times the times it was generated, in [-2, 2] (OpenAI's; default: ${DEFAULT-VALUE}).")
    float frequencyPenalty = 0f;

    @Option(names = "--presence-penalty", paramLabel = "P", description = "Lower the logit of every token generated already by P, in [-2, 2] (OpenAI's; default: ${DEFAULT-VALUE}).")
    float presencePenalty = 0f;

    @Option(names = "--seed", paramLabel = "S", description = "Sampling seed (default: ${DEFAULT-VALUE}).")
    long seed = 1;

    @Option(names = "--arithmetic", paramLabel = "longspan|ggml-avx2|ggml-avx512",
            description = "ggml-avx2 or ggml-avx512: every logit as llama.cpp b4748 computes it when generating (a GGUF llama or qwen2 "
                    + "model; the prompt as one batch, then token by token; its F16 cache unless --kv), so a greedy continuation is "
                    + "llama.cpp's token for token (default: longspan).")
    String arithmetic = "longspan";




    @Option(names = "--json", description = "Print one JSON object on standard output.")
    boolean json;

    @Option(names = "--logprobs", paramLabel = "N",
            description = "With --json: the log-probability of each generated token and the N most likely alternatives (softmax of the raw logits; default: off).")
    Integer logprobs;

    @Mixin
    Main.ComputeOptions compute;

    @Override
    public void run() {
        compute.apply();
        if (maxTokens < 0) throw new LongspanException("--max-tokens must be ≥ 0, got " + maxTokens);
        if (!Float.isFinite(temperature) || temperature < 0) throw new LongspanException("--temperature must be a number ≥ 0, got " + temperature);
        Sampler sampler = new Sampler(temperature, topP, topK, minP, frequencyPenalty, presencePenalty, seed);
        if (raw && templateKwargs != null) throw new LongspanException("--chat-template-kwargs needs the chat template (drop --raw)");
        Map<String, Object> variables = JinjaChatTemplate.variables(templateKwargs, "--chat-template-kwargs");
        ModelLoader.LoadedModel lm = modelOptions.load(model);
        Tokenizer tok = lm.tokenizer();
        prompt = source.text != null ? source.text : readPrompt(source.file);
        if (prompt.isEmpty()) throw new LongspanException(source.text != null ? "--prompt is empty" : "--prompt-file " + source.file + ": the file is empty");
        if (raw && system != null) throw new LongspanException("--system needs the chat template (drop --raw)");
        ChatFormat chat = raw ? ChatTemplate.NONE : JinjaChatTemplate.forModel(lm);
        int[] ids;
        if (raw) {
            ids = lm.promptIds(prompt, true);
        } else {
            List<ChatFormat.Message> turns = new ArrayList<>();
            if (system != null) turns.add(new ChatFormat.Message("system", system));
            turns.add(new ChatFormat.Message("user", prompt));
            ids = ChatPrompts.ids(tok, chat.render(turns, true, variables));
        }
        if (ids.length == 0) throw new LongspanException("--prompt is empty");
        if (logprobs != null && (logprobs < 0 || !json)) {
            throw new LongspanException(logprobs < 0 ? "--logprobs must be ≥ 0, got " + logprobs : "--logprobs needs --json");
        }
        InferenceOptions options = modelOptions.inference(lm.model().config);
        long capacity = (long) ids.length + maxTokens;
        if (capacity > Heap.MAX_ARRAY) throw new LongspanException("--max-tokens " + maxTokens + ": a context of " + capacity + " tokens is more than Longspan can index");
        MemoryEstimate.requireInference(lm.model().config, (int) capacity, ids.length, 1, options.halfKv(),
                "a context of " + capacity + " tokens (--prompt and --max-tokens)");
        Generator.Options o = Generator.Options.of(maxTokens).withStopIds(lm.stopIds());
        if (logprobs != null) o = o.withLogprobs(logprobs);
        Generator.Result g;
        dev.longspan.eval.GgmlReplica.Build build = switch (arithmetic) {
            case "longspan" -> null;
            case "ggml-avx2" -> dev.longspan.eval.GgmlReplica.Build.AVX2;
            case "ggml-avx512" -> dev.longspan.eval.GgmlReplica.Build.AVX512;
            default -> throw new LongspanException("--arithmetic must be longspan, ggml-avx2 or ggml-avx512, got '" + arithmetic + "'");
        };
        if (build == null) {
            InferenceSession s = new InferenceSession(lm.model(), (int) capacity, options);
            g = new Generator(s, tok, sampler).generate(ids, o, json ? piece -> { } : GenerateCommand::print);
        } else {
            String conflict = modelOptions.replayConflict(model);
            if (conflict != null) throw new LongspanException("--arithmetic " + arithmetic + ": " + conflict);
            String kv = modelOptions.kv == null ? "f16" : modelOptions.kv;
            try (dev.longspan.io.GgufFile gf = dev.longspan.io.GgufFile.open(model)) {
                dev.longspan.eval.GgmlReplica replica = new dev.longspan.eval.GgmlReplica(gf, kv.equals("f16"), build);
                g = new Generator(replica.new Session(), tok, sampler).generate(ids, o, json ? piece -> { } : GenerateCommand::print);
            }
        }
        int generated = g.ids().length;
        String text = g.text();
        double prefill = g.prefillSeconds(), decode = g.decodeSeconds();
        if (json) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("model", model.toString());
            r.put("format", lm.format().name().toLowerCase(java.util.Locale.ROOT));
            r.put("chat_template", chat.id());
            r.put("prompt_tokens", ids.length);
            r.put("generated_tokens", generated);
            r.put("stop", g.stop().id());
            r.put("text", text);
            r.put("prompt_ids", ids);
            r.put("ids", g.ids());
            if (logprobs != null) {
                List<Map<String, Object>> lp = new ArrayList<>();
                for (Sampler.Choice c : g.logprobs()) {
                    Map<String, Object> e = tokenEntry(tok, c.id(), c.logprob());
                    List<Map<String, Object>> top = new ArrayList<>();
                    for (Sampler.Alternative a : c.top()) top.add(tokenEntry(tok, a.id(), a.logprob()));
                    e.put("top", top);
                    lp.add(e);
                }
                r.put("logprobs", lp);
            }
            r.put("prefill_tokens_per_s", ids.length / prefill);
            r.put("decode_tokens_per_s", generated / Math.max(decode, 1e-9));
            Json.print(r);
        } else {
            System.out.println();
            System.err.printf("%d prompt tokens (%.0f tok/s), %d generated (%.1f tok/s)%n", ids.length, ids.length / prefill,
                    generated, generated / Math.max(decode, 1e-9));
        }
    }

    // a token's own text (its bytes as UTF-8: a piece of a character shows as U+FFFD) and its bytes
    private static Map<String, Object> tokenEntry(Tokenizer tok, int id, double logprob) {
        Map<String, Object> e = new LinkedHashMap<>();
        byte[] b = tok.tokenBytes(id);
        int[] bytes = new int[b.length];
        for (int i = 0; i < b.length; i++) bytes[i] = b[i] & 0xff;
        e.put("id", id);
        e.put("text", new String(b, StandardCharsets.UTF_8));
        e.put("bytes", bytes);
        e.put("logprob", logprob);
        return e;
    }

    // the completion as it is generated: complete characters only (TextStream holds back a split one), raw UTF-8
    private static void print(String piece) {
        if (piece.isEmpty()) return;
        byte[] b = piece.getBytes(StandardCharsets.UTF_8);
        System.out.write(b, 0, b.length);
        System.out.flush();
    }

    // the whole file as UTF-8; a missing, unreadable or non-UTF-8 file is one line naming it
    private static String readPrompt(Path file) {
        try {
            return java.nio.file.Files.readString(file, StandardCharsets.UTF_8);
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new LongspanException("--prompt-file " + file + ": not UTF-8 text");
        } catch (java.nio.file.NoSuchFileException e) {
            throw new LongspanException("--prompt-file " + file + ": no such file");
        } catch (java.io.IOException e) {
            throw new LongspanException("--prompt-file " + file + ": cannot read: " + dev.longspan.io.IoErrors.reason(e));
        }
    }
}

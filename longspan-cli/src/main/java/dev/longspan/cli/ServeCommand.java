package dev.longspan.cli;

import dev.longspan.model.MemoryEstimate;
import dev.longspan.format.ModelLoader;
import dev.longspan.model.ChatFormat;
import dev.longspan.model.InferenceOptions;
import dev.longspan.model.InferenceSession;
import dev.longspan.server.OpenAiServer;
import dev.longspan.server.ServerOptions;
import dev.longspan.util.Log;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serve a model over an OpenAI-compatible HTTP API, reusing the KV cache of shared prompt prefixes.",
                "Chat and text completions (streamed or whole), /v1/models, /health and Prometheus /metrics."})
final class ServeCommand implements Runnable {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--model", required = true, paramLabel = "PATH",
            description = "A GGUF file, a Hugging Face safetensors directory or a Longspan model directory.")
    Path model;

    @Option(names = "--host", paramLabel = "ADDR", description = "Address to listen on (default: ${DEFAULT-VALUE}, this machine only).")
    String host = "127.0.0.1";

    @Option(names = "--port", paramLabel = "N", description = "Port to listen on, 0 for any free one (default: ${DEFAULT-VALUE}).")
    int port = 8080;

    @Option(names = "--model-name", paramLabel = "NAME",
            description = "The model's name in the API (default: the model file or directory name without its extension).")
    String modelName;

    @Option(names = "--api-key", paramLabel = "KEY", defaultValue = "${env:LONGSPAN_API_KEY}",
            description = "Require this key as 'Authorization: Bearer KEY' (default: the LONGSPAN_API_KEY environment variable, else none).")
    String apiKey;

    @Option(names = "--ctx", paramLabel = "N",
            description = "Context of each request, prompt plus completion, e.g. 64k (default: the model's context length).")
    String ctx;

    @Option(names = "--parallel", paramLabel = "N", description = "Requests generating at once (default: ${DEFAULT-VALUE}).")
    int parallel = 2;

    @Option(names = "--queue", paramLabel = "N", description = "Requests waiting for a slot at most; more get HTTP 429 (default: ${DEFAULT-VALUE}).")
    int queue = 64;

    @Option(names = "--timeout", paramLabel = "SECONDS", description = "A request's time limit, queue wait included (default: ${DEFAULT-VALUE}).")
    int timeout = 600;

    @Option(names = "--max-body", paramLabel = "BYTES", description = "Largest request body, e.g. 16m; larger ones get HTTP 413 (default: ${DEFAULT-VALUE}).")
    String maxBody = "16m";

    @Option(names = "--kv-budget", paramLabel = "BYTES",
            description = "Memory for KV caches kept between requests to reuse shared prompt prefixes, e.g. 2g; least recently used go first (default: ${DEFAULT-VALUE}).")
    String kvBudget = "1g";

    @Option(names = "--kv-dir", paramLabel = "DIR",
            description = "Keep prefilled prompts in this directory (within --kv-budget) so that they survive a restart (default: not kept).")
    Path kvDir;

    @Option(names = "--chat-template-kwargs", paramLabel = "JSON",
            description = "Default extra variables for the model's chat template, a JSON object, e.g. '{\"enable_thinking\": false}'; a request's chat_template_kwargs override them key by key.")
    String templateKwargs;





    @Mixin
    Main.ComputeOptions compute;

    @Override
    public void run() {
        compute.apply();
        if (port < 0 || port > 65535) throw new LongspanException("--port must be in 0..65535, got " + port);
        if (parallel < 1) throw new LongspanException("--parallel must be at least 1, got " + parallel);
        if (queue < 0) throw new LongspanException("--queue must be ≥ 0, got " + queue);
        if (timeout < 1) throw new LongspanException("--timeout must be at least 1 second, got " + timeout);
        long body = bytes(maxBody, "--max-body"), budget = bytes(kvBudget, "--kv-budget");
        if (apiKey != null && apiKey.isBlank()) throw new LongspanException("--api-key is empty");
        if (kvDir != null) {
            if (Files.exists(kvDir) && !Files.isDirectory(kvDir)) throw new LongspanException("--kv-dir " + kvDir + ": not a directory");
            try {
                Files.createDirectories(kvDir);
            } catch (IOException e) {
                throw new LongspanException("--kv-dir " + kvDir + ": cannot create it (" + e.getMessage() + ")");
            }
            dev.longspan.io.AtomicFiles.checkWritableDirectory(kvDir);
        }
        boolean halfKv = KvFlag.half(modelOptions.kv());
        ModelLoader.LoadedModel lm = modelOptions.load(model);
        InferenceOptions options = modelOptions.inference(lm.model().config);
        int context = ctx == null ? lm.model().config.contextLength() : Sizes.parse(ctx, "--ctx");
        if (context < 2) throw new LongspanException("--ctx must be at least 2, got " + context);
        MemoryEstimate.requireInference(lm.model().config, context, Math.min(context, InferenceSession.MAX_CHUNK), 1, halfKv,
                "a request context of " + context + " tokens (--ctx)");
        ChatFormat chat = JinjaChatTemplate.forModel(lm).withVariables(JinjaChatTemplate.variables(templateKwargs, "--chat-template-kwargs"));
        String name = modelName != null ? modelName : defaultName(model);
        if (name.isBlank()) throw new LongspanException("--model-name is empty");
        ServerOptions so = new ServerOptions(host, port, apiKey, name, body, parallel, queue, timeout * 1000L, context, budget, kvDir);
        HELIDON_LOG.setLevel(java.util.logging.Level.WARNING);   // its start-up INFO lines; warnings still show
        OpenAiServer server = OpenAiServer.create(lm, chat, options, so, fingerprint(context, halfKv, options));
        try {
            server.start();
        } catch (RuntimeException e) {
            throw new LongspanException("cannot listen on " + host + ":" + port + " (" + rootMessage(e) + ")");
        }
        System.err.printf("longspan serve: model '%s' (%s, chat template %s, context %d) on http://%s:%d/v1%s%n", name, lm.format().name().toLowerCase(Locale.ROOT),
                chat.id(), context, host, server.port(), apiKey != null ? " (API key required)" : "");
        CountDownLatch stopped = new CountDownLatch(1);
        // SIGTERM / Ctrl-C: new requests get 503, admitted ones finish (up to --timeout), then the server stops
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.err.println("longspan serve: shutting down, finishing requests in flight");
            if (!server.drain(timeout * 1000L)) Log.warn("requests still running after " + timeout + " s; stopping anyway");
            server.close();
            stopped.countDown();
        }, "longspan-serve-drain"));
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // held: java.util.logging keeps loggers weakly, a collected one would forget its level
    private static final java.util.logging.Logger HELIDON_LOG = java.util.logging.Logger.getLogger("io.helidon");

    // the API's model name: the file or directory name, never the path to it
    static String defaultName(Path model) {
        String n = model.toAbsolutePath().normalize().getFileName().toString();
        return n.toLowerCase(Locale.ROOT).endsWith(".gguf") ? n.substring(0, n.length() - 5) : n;
    }

    private String fingerprint(int context, boolean halfKv, InferenceOptions options) {
        StringBuilder b = new StringBuilder(model.toAbsolutePath().normalize().toString());
        try (Stream<Path> files = Files.isDirectory(model) ? Files.list(model) : Stream.of(model)) {
            for (Path p : files.sorted().toList()) {
                if (Files.isRegularFile(p)) b.append('|').append(p.getFileName()).append(':').append(Files.size(p)).append(':').append(Files.getLastModifiedTime(p).toMillis());
            }
        } catch (IOException e) {
            throw new LongspanException("--model " + model + ": " + e.getMessage());
        }
        b.append("|attention=").append(modelOptions.attention).append("|rope=").append(modelOptions.rope).append("|dequantize=").append(modelOptions.dequantize).append("|no-repack=").append(modelOptions.noRepack)
                .append("|kv=").append(halfKv ? "f16" : "f32").append("|logn=").append(options.lognLength()).append("|ctx=").append(context);
        return b.toString();
    }

    private static String rootMessage(Throwable e) {
        while (e.getCause() != null) e = e.getCause();
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    // 4096, 64k, 16m, 2g (powers of 1024)
    static long bytes(String s, String option) {
        String t = s.strip().toLowerCase(Locale.ROOT);
        long mul = 1;
        if (t.endsWith("b")) t = t.substring(0, t.length() - 1);
        switch (t.isEmpty() ? ' ' : t.charAt(t.length() - 1)) {
            case 'k' -> mul = 1L << 10;
            case 'm' -> mul = 1L << 20;
            case 'g' -> mul = 1L << 30;
            case 't' -> mul = 1L << 40;
            default -> { }
        }
        if (mul > 1) t = t.substring(0, t.length() - 1);
        try {
            long v = Long.parseLong(t);
            if (v < 1 || v > Long.MAX_VALUE / mul) throw new NumberFormatException();
            return v * mul;
        } catch (NumberFormatException e) {
            throw new LongspanException(option + ": '" + s + "' is not a size in bytes (e.g. 65536, 64k, 16m, 2g)");
        }
    }
}

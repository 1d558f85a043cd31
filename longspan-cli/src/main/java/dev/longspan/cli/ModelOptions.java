package dev.longspan.cli;

import dev.longspan.format.ModelLoader;
import dev.longspan.model.InferenceOptions;
import dev.longspan.model.ModelConfig;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/**
 * The options every command that runs a model shares (generate, passkey, perplexity, serve): the
 * attention plan and RoPE it runs with, how its weights and adapter are loaded, and its KV cache.
 */
final class ModelOptions {
    @Option(names = "--attention", paramLabel = "SPEC", description = "Attention pattern for every layer, or a masformer|... plan (default: the model's own).")
    String attention;
    @Option(names = "--rope", paramLabel = "SPEC", description = "RoPE override, e.g. kind=yarn,factor=8,orig=4096.")
    String rope;
    @Option(names = "--dequantize", description = ModelLoading.DEQUANTIZE) boolean dequantize;
    @Option(names = "--no-repack", description = ModelLoading.NO_REPACK) boolean noRepack;
    @Option(names = "--adapter", paramLabel = "DIR", description = ModelLoading.ADAPTER) Path adapter;
    @Option(names = "--kv", paramLabel = "f32|f16", description = "KV cache precision (default: f32; perplexity --ctx: f16, llama-perplexity's).") String kv;
    @Option(names = "--logn", paramLabel = "L", description = KvFlag.LOGN_DESCRIPTION) Integer logn;

    ModelLoader.LoadedModel load(Path model) {
        return ModelLoading.load(model, attention, rope, ModelLoading.weights(dequantize, noRepack), adapter);
    }

    InferenceOptions inference(ModelConfig c) {
        return KvFlag.options(kv(), logn, c);
    }

    /**
     * Why llama.cpp's arithmetic (eval.GgmlReplica) cannot be replayed on model with these options, or null: it runs
     * the file's own model, plan and stored blocks, so options that change them conflict, as does a cache type it lacks.
     */
    String replayConflict(Path model) {
        for (Object[] opt : new Object[][]{{"--attention", attention}, {"--rope", rope}, {"--adapter", adapter}, {"--logn", logn}}) {
            if (opt[1] != null) return opt[0] + " changes the model, and llama.cpp's arithmetic is replayed on the file's own";
        }
        if (dequantize) return "--dequantize widens the weights, and llama.cpp's arithmetic reads the stored blocks";
        if (kv != null && !kv.equals("f16") && !kv.equals("f32")) return "--kv must be f32 or f16, got '" + kv + "'";
        if (!java.nio.file.Files.isRegularFile(model) || !dev.longspan.io.GgufFile.looksLikeGguf(model)) return model + " is not a GGUF file";
        return null;
    }

    /** The --kv value, f32 when not given. */
    String kv() { return kv == null ? "f32" : kv; }
}

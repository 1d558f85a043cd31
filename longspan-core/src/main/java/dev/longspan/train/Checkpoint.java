package dev.longspan.train;

import dev.longspan.io.Json;
import dev.longspan.io.SafetensorsFile;
import dev.longspan.io.SafetensorsWriter;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.zip.CRC32;

/**
 * Training checkpoints (model directories are {@link dev.longspan.format.LongspanFormat}'s). A
 * checkpoint is one file, {@code checkpoint.safetensors}: parameters, AdamW moments and metadata
 * (step, model config, train config, CRC32 of each array). One file written atomically means a
 * checkpoint is either the old one or the new one, never a mix.
 */
public final class Checkpoint {
    public static final String FILE = "checkpoint.safetensors";
    public static final String FORMAT = "longspan-checkpoint-1";
    /** Metadata key of a LoRA run's settings ({@link LoraTraining.Setup}); its "params" are then what the run trains. */
    public static final String LORA = "lora";

    private Checkpoint() {}

    /** What a checkpoint restores. */
    public record State(long step, float[] params, float[] m, float[] v, ModelConfig model, Map<String, Object> trainJson) {}

    static String crc(float[] a) {
        CRC32 c = new CRC32();
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * 4096).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < a.length; ) {
            b.clear();
            int n = Math.min(4096, a.length - i);
            for (int k = 0; k < n; k++) b.putFloat(a[i + k]);
            c.update(b.array(), 0, 4 * n);
            i += n;
        }
        return Long.toHexString(c.getValue());
    }

    public static void save(Path dir, long step, Transformer model, AdamW opt, TrainConfig tc) {
        save(dir, step, model.config, model.params, opt, tc, null);
    }

    /** A checkpoint of {@code params} (a LoRA run's trained values when {@code lora} gives its settings). */
    static void save(Path dir, long step, ModelConfig config, float[] params, AdamW opt, TrainConfig tc, Map<String, Object> lora) {
        long n = params.length;
        SafetensorsWriter w = new SafetensorsWriter()
                .putF32("params", new long[]{n}, params)
                .putF32("adam.m", new long[]{n}, opt.m)
                .putF32("adam.v", new long[]{n}, opt.v)
                .metadata("format", FORMAT)
                .metadata("step", Long.toString(step))
                .metadata("model_config", Json.write(config.toJson()))
                .metadata("train_config", Json.write(tc.toJson()))
                .metadata("crc32.params", crc(params))
                .metadata("crc32.adam.m", crc(opt.m))
                .metadata("crc32.adam.v", crc(opt.v));
        if (lora != null) w.metadata(LORA, Json.write(lora));
        w.write(dir.resolve(FILE));
    }

    public static State load(Path dir) {
        Path p = dir.resolve(FILE);
        if (!Files.exists(p)) throw new LongspanException(p + ": no checkpoint to resume from");
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            Map<String, String> meta = f.metadata();
            if (!FORMAT.equals(meta.get("format"))) throw new LongspanException(p + ": not a Longspan checkpoint (format " + meta.get("format") + ")");
            long step;
            try {
                step = Long.parseLong(meta.getOrDefault("step", ""));
            } catch (NumberFormatException e) {
                throw new LongspanException(p + ": bad step in metadata");
            }
            String mc = meta.get("model_config"), tcj = meta.get("train_config");
            if (mc == null || tcj == null) throw new LongspanException(p + ": metadata lacks the model or train config");
            ModelConfig model = ModelConfig.fromJson(Json.parseObject(mc, p + " (model_config)"), p + " (model_config)");
            float[] params = f.floats("params"), m = f.floats("adam.m"), v = f.floats("adam.v");
            long expected = meta.containsKey(LORA) ? params.length : new Transformer(model).params.length;
            if (params.length != expected || m.length != expected || v.length != expected) {
                throw new LongspanException(p + ": holds " + params.length + " parameters but its config needs " + expected);
            }
            for (var e : Map.of("params", params, "adam.m", m, "adam.v", v).entrySet()) {
                if (!crc(e.getValue()).equals(meta.get("crc32." + e.getKey()))) {
                    throw new LongspanException(p + ": checksum of '" + e.getKey() + "' does not match (corrupt checkpoint)");
                }
            }
            return new State(step, params, m, v, model, Json.parseObject(tcj, p + " (train_config)"));
        }
    }
}

package dev.longspan.train;

import dev.longspan.format.ModelLoader;
import dev.longspan.format.PeftAdapter;
import dev.longspan.io.Json;
import dev.longspan.io.Tokenizer;
import dev.longspan.model.GradientLayout;
import dev.longspan.model.Lora;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * LoRA fine-tuning: a base model (Longspan directory, GGUF or Hugging Face directory) loaded as
 * it is stored (a GGUF's quantized matrices stay quantized in the mapped file) and frozen, with
 * adapters on the targeted matrices. What is trained is one flat vector, {@link #trained}: the
 * adapters ({@link Lora#weights} is this array) and then the tensors {@code --train-also} names,
 * copied out of the model's parameter array and copied back after each update. Only that vector
 * has gradients and AdamW moments, and a checkpoint holds only it.
 */
public final class LoraTraining {

    /** The parts {@code --train-also} can add to the adapters. */
    public enum Also {
        EMBEDDINGS, NORMS;

        boolean covers(String tensor) {
            return switch (this) {
                // with token_shift the previous-token tables are embeddings too
                case EMBEDDINGS -> tensor.equals("model.embed_tokens.weight") || Transformer.isPrevEmbedding(tensor);
                case NORMS -> tensor.endsWith("norm.weight");
            };
        }

        public static Also parse(String s) {
            for (Also a : values()) if (a.name().toLowerCase(Locale.ROOT).equals(s.trim().toLowerCase(Locale.ROOT))) return a;
            throw new LongspanException("--train-also: unknown part '" + s + "' (embeddings, norms)");
        }
    }

    /** What a LoRA run is: the base model's path, the adapters' spec, what is trained besides. */
    public record Setup(Path base, Lora.Spec spec, Set<Also> also) {
        Map<String, Object> toJson() {
            Map<String, Object> j = new LinkedHashMap<>();
            j.put("base", base.toString());
            j.put("rank", (long) spec.rank());
            j.put("alpha", spec.alpha());
            List<Object> t = new ArrayList<>();
            for (Lora.Target x : EnumSet.copyOf(spec.targets())) t.add(x.flag);
            j.put("targets", t);
            List<Object> a = new ArrayList<>();
            for (Also x : also) a.add(x.name().toLowerCase(Locale.ROOT));
            j.put("train_also", a);
            return j;
        }

        static Setup fromJson(Map<String, Object> j, String src) {
            try {
                Set<Lora.Target> targets = EnumSet.noneOf(Lora.Target.class);
                for (Object o : (List<?>) j.get("targets")) targets.add(Lora.Target.byFlag((String) o, src));
                Set<Also> also = EnumSet.noneOf(Also.class);
                for (Object o : (List<?>) j.get("train_also")) also.add(Also.parse((String) o));
                return new Setup(Path.of((String) j.get("base")),
                        new Lora.Spec((int) (long) (Long) j.get("rank"), ((Number) j.get("alpha")).doubleValue(), targets), also);
            } catch (ClassCastException | NullPointerException e) {
                throw new LongspanException(src + ": malformed LoRA settings " + Json.write(j));
            }
        }
    }

    final Setup setup;
    final Transformer model;
    final Lora lora;
    final List<Transformer.Tensor> also;
    final float[] trained;
    final GradientLayout layout;

    /**
     * Loads the base as stored and checks it against the run's model config: the shapes must be
     * equal (attention, RoPE and context length may differ; the config's are used) and its
     * tokenizer Longspan's byte tokenizer, because training reads text as bytes.
     */
    LoraTraining(Setup setup, ModelConfig config) {
        this.setup = setup;
        ModelLoader.LoadedModel loaded = ModelLoader.load(setup.base(), ModelLoader.Weights.STORED);
        Transformer base = loaded.model();
        if (!sameLayout(base.config, config)) {
            throw new LongspanException(setup.base() + ": its shape differs from --config's model (only attention, rope and context_length may change when fine-tuning)");
        }
        requireByteTokens(loaded.tokenizer(), setup.base());
        base = base.withConfig(config);
        List<Transformer.Tensor> ts = new ArrayList<>();
        for (Transformer.Tensor t : base.tensors()) {
            if (setup.also().stream().noneMatch(a -> a.covers(t.name()))) continue;
            if (t.offset() < 0) {
                throw new LongspanException(setup.base() + ": --train-also needs " + t.name() + " in float32, but the file stores it as " + base.embedding.type()
                        + " (train the adapters alone, or convert the model to float32 first)");
            }
            ts.add(t);
        }
        this.also = List.copyOf(ts);
        int n = Lora.size(config, setup.spec());
        for (Transformer.Tensor t : also) n += t.size();
        this.trained = new float[n];
        this.lora = new Lora(config, setup.spec(), trained);
        this.model = base.withAdapters(lora);
        this.layout = GradientLayout.adapters(model, also);
    }

    static boolean sameLayout(ModelConfig a, ModelConfig b) {
        List<Transformer.Tensor> x = new Transformer(a, true).tensors(), y = new Transformer(b, true).tensors();
        if (x.size() != y.size()) return false;
        for (int i = 0; i < x.size(); i++) {
            if (!x.get(i).name().equals(y.get(i).name()) || !Arrays.equals(x.get(i).shape(), y.get(i).shape())) return false;
        }
        return true;
    }

    // training draws text as byte ids 0..255: a model must read them as those bytes
    private static void requireByteTokens(Tokenizer tok, Path src) {
        String probe = "In the beginning, 42 {x}!\n";
        int[] ids = tok.encode(probe);
        byte[] bytes = probe.getBytes(StandardCharsets.UTF_8);
        boolean same = ids.length == bytes.length;
        for (int i = 0; same && i < ids.length; i++) same = ids[i] == (bytes[i] & 0xff);
        if (!same) {
            throw new LongspanException(src + ": its tokenizer is not Longspan's byte tokenizer; training reads text as bytes (one token per byte), so only models with byte tokens can be fine-tuned");
        }
    }

    /** Fresh adapters (A seeded, B zero) and the also-trained tensors' current values. */
    void initialize(long seed) {
        lora.initialize(seed);
        int off = lora.size();
        for (Transformer.Tensor t : also) {
            System.arraycopy(model.params, t.offset(), trained, off, t.size());
            off += t.size();
        }
    }

    /** Copies the also-trained tensors from {@link #trained} into the model (after an update or a restore). */
    void syncToModel() {
        int off = lora.size();
        for (Transformer.Tensor t : also) {
            System.arraycopy(trained, off, model.params, t.offset(), t.size());
            off += t.size();
        }
    }

    /** Weight decay on the adapters and the embeddings, not on the norms (as full training's mask). */
    boolean[] decayMask() {
        boolean[] m = new boolean[trained.length];
        Arrays.fill(m, 0, lora.size(), true);
        int off = lora.size();
        for (Transformer.Tensor t : also) {
            Arrays.fill(m, off, off + t.size(), t.decay());
            off += t.size();
        }
        return m;
    }

    /** The adapters (and the also-trained tensors) as a PEFT adapter directory. */
    void save(Path dir) {
        PeftAdapter.save(dir, model, also, setup.base().toAbsolutePath().normalize().toString());
    }

    public static String describe(Setup s) {
        return "LoRA rank " + s.spec().rank() + ", alpha " + s.spec().alpha() + " on " + new TreeSet<>(s.spec().targets().stream().map(t -> t.flag).toList())
                + (s.also().isEmpty() ? "" : ", also training " + s.also().stream().map(a -> a.name().toLowerCase(Locale.ROOT)).toList());
    }
}

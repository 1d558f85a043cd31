package dev.longspan.format;

import dev.longspan.io.AtomicFiles;
import dev.longspan.io.Json;
import dev.longspan.io.SafetensorsFile;
import dev.longspan.io.SafetensorsWriter;
import dev.longspan.model.Lora;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * LoRA adapters as Hugging Face PEFT saves them: a directory with {@code adapter_config.json}
 * ({@code peft_type} LORA, {@code r}, {@code lora_alpha}, {@code target_modules}, ...) and
 * {@code adapter_model.safetensors}, tensors
 * {@code base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight} [r, in] and
 * {@code ...lora_B.weight} [out, r]. Tensors trained besides the adapters (embeddings, norms) are
 * saved as PEFT saves {@code modules_to_save}: under {@code base_model.model.} + the model's own
 * tensor name, with their module names in {@code modules_to_save}.
 *
 * <p>The matrices' rows are in the model's order, which is Hugging Face's for every format
 * Longspan reads (a GGUF's permuted Q/K rows are put back into it at load), so an adapter trained
 * on a GGUF applies unchanged to the Hugging Face checkpoint it was converted from and the other
 * way round.
 */
public final class PeftAdapter {
    private PeftAdapter() {}

    public static final String CONFIG = "adapter_config.json";
    public static final String WEIGHTS = "adapter_model.safetensors";
    static final String PREFIX = "base_model.model.";

    static String tensorName(Lora.Adapter a, String which) {
        return PREFIX + a.module() + ".lora_" + which + ".weight";
    }

    /**
     * Writes the adapters of m (and the tensors in {@code alsoTrained}, from m's parameter array)
     * into dir, each file atomically. {@code base} is recorded as base_model_name_or_path.
     */
    public static void save(Path dir, Transformer m, List<Transformer.Tensor> alsoTrained, String base) {
        Lora lora = m.lora;
        if (lora == null) throw new IllegalArgumentException("the model has no adapters");
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
        int r = lora.spec.rank();
        for (Lora.Adapter a : lora.adapters()) {
            w.putF32(tensorName(a, "A"), new long[]{r, a.in()}, Arrays.copyOfRange(lora.weights, a.aOff(), a.aOff() + r * a.in()));
            w.putF32(tensorName(a, "B"), new long[]{a.out(), r}, Arrays.copyOfRange(lora.weights, a.bOff(), a.bOff() + a.out() * r));
        }
        Set<String> modules = new LinkedHashSet<>();
        for (Transformer.Tensor t : alsoTrained) {
            w.putF32(PREFIX + t.name(), t.shape(), Arrays.copyOfRange(m.params, t.offset(), t.offset() + t.size()));
            String module = t.name().substring(0, t.name().lastIndexOf('.'));
            modules.add(module.substring(module.lastIndexOf('.') + 1));
        }
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("peft_type", "LORA");
        c.put("task_type", "CAUSAL_LM");
        c.put("base_model_name_or_path", base);
        c.put("r", (long) r);
        c.put("lora_alpha", lora.spec.alpha());
        c.put("lora_dropout", 0.0);
        List<Object> targets = new ArrayList<>();
        for (Lora.Target t : EnumSet.copyOf(lora.spec.targets())) targets.add(t.peftName());
        c.put("target_modules", targets);
        c.put("bias", "none");
        c.put("fan_in_fan_out", false);
        c.put("use_rslora", false);
        c.put("use_dora", false);
        c.put("init_lora_weights", true);
        c.put("inference_mode", true);
        c.put("modules_to_save", modules.isEmpty() ? null : new ArrayList<Object>(modules));
        c.put("layers_to_transform", null);
        c.put("rank_pattern", Map.of());
        c.put("alpha_pattern", Map.of());
        try {
            Files.createDirectories(dir);
        } catch (java.io.IOException e) {
            throw new LongspanException(dir + ": cannot create: " + dev.longspan.io.IoErrors.reason(e), e);
        }
        w.write(dir.resolve(WEIGHTS));
        AtomicFiles.writeString(dir.resolve(CONFIG), Json.writePretty(c) + "\n");
    }

    /**
     * m with the adapters of dir applied (not merged); tensors the adapter saved besides (PEFT's
     * modules_to_save) replace m's in a copy of its parameter array. Everything is checked against
     * m's shapes first; an error names the file and the field or tensor.
     */
    public static Transformer apply(Path dir, Transformer m) {
        if (!Files.isDirectory(dir)) throw new LongspanException(dir + ": no such adapter directory");
        Path cp = dir.resolve(CONFIG), wp = dir.resolve(WEIGHTS);
        if (!ModelLoader.isFile(cp)) throw new LongspanException(dir + ": no " + CONFIG + " (not a PEFT adapter directory)");
        if (!ModelLoader.isFile(wp)) throw new LongspanException(dir + ": no " + WEIGHTS + " (the adapter weights are missing)");
        Lora.Spec spec = readSpec(cp);
        if (m.lora != null) throw new LongspanException(dir + ": the model already carries an adapter (one at a time)");
        var c = m.config;
        try (SafetensorsFile f = SafetensorsFile.open(wp)) {
            float[] weights = new float[Lora.size(c, spec)];
            Lora lora = new Lora(c, spec, weights);
            Set<String> used = new LinkedHashSet<>();
            int r = spec.rank();
            for (Lora.Adapter a : lora.adapters()) {
                read(f, wp, tensorName(a, "A"), new long[]{r, a.in()}, weights, a.aOff());
                read(f, wp, tensorName(a, "B"), new long[]{a.out(), r}, weights, a.bOff());
                used.add(tensorName(a, "A"));
                used.add(tensorName(a, "B"));
            }
            float[] params = null;
            for (String n : f.names()) {
                if (used.contains(n)) continue;
                Transformer.Tensor t = n.startsWith(PREFIX) ? m.tensor(n.substring(PREFIX.length())) : null;
                if (t == null) throw new LongspanException(wp + ": tensor '" + n + "' is not an adapter of the targets in " + CONFIG + " nor a tensor of this model");
                if (t.offset() < 0) {
                    throw new LongspanException(wp + ": tensor '" + n + "' replaces " + t.name() + ", which this model keeps as stored in its file; load it with --dequantize");
                }
                if (params == null) params = m.params.clone();
                read(f, wp, n, t.shape(), params, t.offset());
            }
            Transformer base = params == null ? m : copyWithParams(m, params);
            return base.withAdapters(lora);
        }
    }

    // m's layout over another parameter array of the same length (a model directory or HF model: no stored matrices)
    private static Transformer copyWithParams(Transformer m, float[] params) {
        m.requireParams("replace tensors of");
        Transformer t = new Transformer(m.config);
        System.arraycopy(params, 0, t.params, 0, params.length);
        return t;
    }

    private static void read(SafetensorsFile f, Path wp, String name, long[] shape, float[] dst, int off) {
        if (!f.has(name)) throw new LongspanException(wp + ": missing tensor '" + name + "'");
        if (!Arrays.equals(f.shape(name), shape)) {
            throw new LongspanException(wp + ": tensor '" + name + "' has shape " + Arrays.toString(f.shape(name)) + " but the model needs " + Arrays.toString(shape));
        }
        float[] v = f.floats(name);
        System.arraycopy(v, 0, dst, off, v.length);
    }

    /** The rank, alpha and targets of an adapter_config.json, refusing what Longspan cannot apply exactly. */
    public static Lora.Spec readSpec(Path cp) {
        Map<String, Object> j = ModelLoader.readJson(cp);
        String src = cp.toString();
        if (!"LORA".equals(j.get("peft_type"))) throw new LongspanException(src + ": peft_type must be \"LORA\", got " + describe(j.get("peft_type")));
        if (!(j.get("r") instanceof Long r) || r < 1 || r > Integer.MAX_VALUE) throw new LongspanException(src + ": r must be a positive integer, got " + describe(j.get("r")));
        Object al = j.containsKey("lora_alpha") ? j.get("lora_alpha") : (Object) 8L;   // PEFT's default
        if (!(al instanceof Number alpha) || !(alpha.doubleValue() > 0)) throw new LongspanException(src + ": lora_alpha must be a positive number, got " + describe(al));
        Object bias = j.get("bias");
        if (bias != null && !"none".equals(bias)) throw new LongspanException(src + ": bias " + describe(bias) + " is not supported (only \"none\")");
        for (String flag : List.of("fan_in_fan_out", "use_rslora", "use_dora")) {
            if (Boolean.TRUE.equals(j.get(flag))) throw new LongspanException(src + ": " + flag + " true is not supported");
        }
        for (String pattern : List.of("rank_pattern", "alpha_pattern")) {
            if (j.get(pattern) instanceof Map<?, ?> pm && !pm.isEmpty()) throw new LongspanException(src + ": " + pattern + " is not supported (one rank and alpha for every layer)");
        }
        if (j.get("layers_to_transform") != null) throw new LongspanException(src + ": layers_to_transform is not supported (adapters on every layer)");
        Set<Lora.Target> targets = EnumSet.noneOf(Lora.Target.class);
        if (!(j.get("target_modules") instanceof List<?> tm) || tm.isEmpty()) {
            throw new LongspanException(src + ": target_modules must be a non-empty list of module names (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
        }
        for (Object o : tm) {
            Lora.Target t = o instanceof String s ? Lora.Target.byPeftName(s) : null;
            if (t == null) throw new LongspanException(src + ": target_modules entry " + describe(o) + " is not supported (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
            targets.add(t);
        }
        return new Lora.Spec((int) (long) r, alpha.doubleValue(), targets);
    }

    private static String describe(Object v) {
        return v == null ? "nothing" : v instanceof String s ? "\"" + s + "\"" : String.valueOf(v);
    }
}

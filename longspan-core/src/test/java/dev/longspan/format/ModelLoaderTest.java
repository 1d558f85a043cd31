package dev.longspan.format;

import dev.longspan.io.ByteTokenizer;
import dev.longspan.io.GgufFile;
import dev.longspan.io.GgufWriter;
import dev.longspan.io.Json;
import dev.longspan.io.SafetensorsWriter;
import dev.longspan.kernel.GgmlType;
import dev.longspan.model.ChatTemplate;
import dev.longspan.model.InferenceSession;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ModelLoaderTest {
    @TempDir
    Path tmp;

    static final int VOCAB = 300, DIM = 64, LAYERS = 2, FFN = 96;

    // ---- random model tensors ---------------------------------------------------------------

    /** Random tensors of a Llama-family model under Hugging Face names, [out, in] row-major. */
    static Map<String, float[]> randomHf(long seed, int heads, int kvHeads, int D, boolean tied, boolean bias, boolean qkNorm) {
        SplittableRandom r = new SplittableRandom(seed);
        Map<String, float[]> m = new LinkedHashMap<>();
        m.put("model.embed_tokens.weight", rnd(r, VOCAB * DIM, 1.0));
        for (int l = 0; l < LAYERS; l++) {
            String p = "model.layers." + l + ".";
            m.put(p + "input_layernorm.weight", norm(r, DIM));
            m.put(p + "self_attn.q_proj.weight", rnd(r, heads * D * DIM, 1.5 / Math.sqrt(DIM)));
            m.put(p + "self_attn.k_proj.weight", rnd(r, kvHeads * D * DIM, 1.5 / Math.sqrt(DIM)));
            m.put(p + "self_attn.v_proj.weight", rnd(r, kvHeads * D * DIM, 1.0 / Math.sqrt(DIM)));
            if (bias) {
                m.put(p + "self_attn.q_proj.bias", rnd(r, heads * D, 0.3));
                m.put(p + "self_attn.k_proj.bias", rnd(r, kvHeads * D, 0.3));
                m.put(p + "self_attn.v_proj.bias", rnd(r, kvHeads * D, 0.3));
            }
            if (qkNorm) {
                m.put(p + "self_attn.q_norm.weight", norm(r, D));
                m.put(p + "self_attn.k_norm.weight", norm(r, D));
            }
            m.put(p + "self_attn.o_proj.weight", rnd(r, DIM * heads * D, 1.0 / Math.sqrt(heads * D)));
            m.put(p + "post_attention_layernorm.weight", norm(r, DIM));
            m.put(p + "mlp.gate_proj.weight", rnd(r, FFN * DIM, 1.5 / Math.sqrt(DIM)));
            m.put(p + "mlp.up_proj.weight", rnd(r, FFN * DIM, 1.5 / Math.sqrt(DIM)));
            m.put(p + "mlp.down_proj.weight", rnd(r, DIM * FFN, 1.0 / Math.sqrt(FFN)));
        }
        m.put("model.norm.weight", norm(r, DIM));
        if (!tied) m.put("lm_head.weight", rnd(r, VOCAB * DIM, 1.0 / Math.sqrt(DIM)));
        return m;
    }

    static float[] rnd(SplittableRandom r, int n, double a) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextDouble(-a, a);
        return x;
    }

    static float[] norm(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (1 + r.nextDouble(-0.2, 0.2));
        return x;
    }

    static long[] shapeOf(String hfName, int heads, int kvHeads, int D) {
        String n = hfName;
        if (n.equals("model.embed_tokens.weight") || n.equals("lm_head.weight")) return new long[]{VOCAB, DIM};
        if (n.endsWith("layernorm.weight") || n.equals("model.norm.weight")) return new long[]{DIM};
        if (n.endsWith("q_norm.weight") || n.endsWith("k_norm.weight")) return new long[]{D};
        if (n.endsWith("q_proj.weight")) return new long[]{heads * D, DIM};
        if (n.endsWith("k_proj.weight") || n.endsWith("v_proj.weight")) return new long[]{kvHeads * D, DIM};
        if (n.endsWith("q_proj.bias")) return new long[]{heads * D};
        if (n.endsWith("k_proj.bias") || n.endsWith("v_proj.bias")) return new long[]{kvHeads * D};
        if (n.endsWith("o_proj.weight")) return new long[]{DIM, heads * D};
        if (n.endsWith("gate_proj.weight") || n.endsWith("up_proj.weight")) return new long[]{FFN, DIM};
        if (n.endsWith("down_proj.weight")) return new long[]{DIM, FFN};
        throw new IllegalArgumentException(n);
    }

    static int[] tokens(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = r.nextInt(VOCAB);
        return t;
    }

    /** Logits of every position: all at once, and again prefix + one token at a time through the cache. */
    static float[][] runBoth(Transformer m, int[] toks) {
        int T = toks.length, V = m.config.vocabSize();
        float[] all = new InferenceSession(m, T).feed(toks, 0, T, T);
        InferenceSession s = new InferenceSession(m, T);
        float[] inc = new float[T * V];
        System.arraycopy(s.feed(toks, 0, 4, 4), 0, inc, 0, 4 * V);
        for (int t = 4; t < T; t++) System.arraycopy(s.feed(toks, t, t + 1), 0, inc, t * V, V);
        return new float[][]{all, inc};
    }

    // ---- GGUF --------------------------------------------------------------------------------

    /** Writes random tensors as a GGUF of the architecture; the tensors are GGUF-native (for llama: interleaved Q/K rows). */
    Path writeGguf(String arch, GgmlType type, boolean tied, int heads, int kvHeads, int D, String scaling, double base) {
        boolean bias = arch.equals("qwen2"), qkNorm = arch.equals("qwen3");
        Map<String, float[]> hf = randomHf(11, heads, kvHeads, D, tied, bias, qkNorm);
        GgufWriter w = new GgufWriter().putString("general.architecture", arch).putString("general.name", "test")
                .putU32(arch + ".context_length", 4096).putU32(arch + ".embedding_length", DIM).putU32(arch + ".block_count", LAYERS)
                .putU32(arch + ".feed_forward_length", FFN).putU32(arch + ".attention.head_count", heads)
                .putU32(arch + ".attention.head_count_kv", kvHeads).putU32(arch + ".attention.key_length", D)
                .putU32(arch + ".attention.value_length", D).putF32(arch + ".rope.freq_base", (float) base)
                .putF32(arch + ".attention.layer_norm_rms_epsilon", 1e-6f);
        if (scaling.equals("linear")) w.putString(arch + ".rope.scaling.type", "linear").putF32(arch + ".rope.scaling.factor", 2f);
        GgufExport.putByteTokenizer(w);
        for (var e : hf.entrySet()) {
            long[] s = shapeOf(e.getKey(), heads, kvHeads, D);
            long[] ne = s.length == 1 ? new long[]{s[0]} : new long[]{s[1], s[0]};
            String gn = GgufFormat.ggufName(e.getKey());
            if (s.length == 1 || type == GgmlType.F32) w.tensorF32(gn, ne, e.getValue());
            else if (type == GgmlType.F16) w.tensorF16(gn, ne, e.getValue());
            else w.tensorQ8_0(gn, ne, e.getValue());
        }
        Path p = tmp.resolve(arch + "-" + type + ".gguf");
        w.write(p);
        return p;
    }

    static Reference64 ggufReference(GgufFile g, int heads, int kvHeads, int D, boolean interleaved) {
        Map<String, float[]> cache = new HashMap<>();
        Reference64 r = Reference64.gguf(n -> g.hasTensor(n) ? cache.computeIfAbsent(n, g::floats) : null);
        r.vocab = (int) g.tensor("token_embd.weight").ne()[1];
        r.dim = (int) g.tensor("token_embd.weight").ne()[0];
        String a = g.getString("general.architecture") + ".";
        r.layers = g.getInt(a + "block_count");
        r.heads = heads; r.kvHeads = kvHeads; r.headDim = D; r.rot = D;
        r.ffn = g.getInt(a + "feed_forward_length");
        r.eps = g.getFloat(a + "attention.layer_norm_rms_epsilon");
        r.interleaved = interleaved;
        r.qkvBias = g.hasTensor("blk.0.attn_q.bias");
        r.qkNorm = g.hasTensor("blk.0.attn_q_norm.weight");
        r.plainRope(g.getFloat(a + "rope.freq_base"));
        if (g.has(a + "rope.scaling.type")) for (int i = 0; i < r.invFreq.length; i++) r.invFreq[i] /= g.getFloat(a + "rope.scaling.factor");
        return r;
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "llama|F32|false|4|2|16|none|10000",
            "llama|F16|true|4|4|16|linear|500000",
            "llama|Q8_0|false|4|1|32|none|10000",
            "mistral|F32|true|2|1|32|none|1000000",
            "qwen2|F32|false|4|2|16|none|1000000",
            "qwen3|F32|true|4|2|32|none|1000000"})
    void ggufLogitsMatchTheFloat64Reference(String arch, String type, boolean tied, int heads, int kvHeads, int D, String scaling, double base) {
        Path p = writeGguf(arch, GgmlType.valueOf(type), tied, heads, kvHeads, D, scaling, base);
        ModelLoader.LoadedModel lm = ModelLoader.load(p);
        Transformer m = lm.model();
        assertThat(lm.format()).isEqualTo(ModelLoader.Format.GGUF);
        assertThat(m.config.tiedEmbeddings()).isEqualTo(tied);
        assertThat(m.config.kvHeads()).isEqualTo(kvHeads);
        assertThat(m.config.rope().pairing()).isEqualTo(dev.longspan.position.Pairing.HALF);
        assertThat(m.config.qkvBias()).isEqualTo(arch.equals("qwen2"));
        assertThat(m.config.qkNorm()).isEqualTo(arch.equals("qwen3"));
        int[] toks = tokens(9, 5);
        double[][] ref;
        boolean interleaved = arch.equals("llama") || arch.equals("mistral");
        try (GgufFile g = GgufFile.open(p)) {
            ref = ggufReference(g, heads, kvHeads, D, interleaved).logits(toks);
        }
        float[][] got = runBoth(m, toks);
        // products on stored F16 / Q8_0 rows round the activations as ggml does (StoredWeightsTest)
        double tol = StoredWeightsTest.activationRounding(GgmlType.valueOf(type));
        assertThat(Reference64.relError(got[0], ref)).as("prefill").isLessThan(tol);
        assertThat(Reference64.relError(got[1], ref)).as("incremental").isLessThan(tol);
        // the convention matters: the other pairing on the stored weights gives other logits
        if (interleaved) {
            try (GgufFile g = GgufFile.open(p)) {
                double[][] wrong = ggufReference(g, heads, kvHeads, D, false).logits(toks);
                assertThat(Reference64.relError(got[0], wrong)).isGreaterThan(1e-3);
            }
        }
    }

    @Test
    void theRealTinyRandomLlamaMatchesTheReference() {
        Path p = Path.of("/work/shared/data/gguf/tiny-random-llama.gguf");
        Path alt = Path.of(System.getProperty("user.dir")).resolve("../../shared/data/gguf/tiny-random-llama.gguf").normalize();
        if (Files.exists(alt)) p = alt;
        ModelLoader.LoadedModel lm = ModelLoader.load(p);
        assertThat(lm.model().config.heads()).isEqualTo(8);
        assertThat(lm.model().config.qDim()).isEqualTo(512);
        assertThat(lm.model().config.tiedEmbeddings()).isTrue();
        assertThat(lm.tokenizer().vocabSize()).isEqualTo(32000);
        int[] toks = lm.promptIds("The quick brown fox jumps", true);
        assertThat(toks[0]).isEqualTo(1); // BOS
        float[][] got = runBoth(lm.model(), toks);
        for (float v : got[0]) assertThat(Float.isFinite(v)).isTrue();
        try (GgufFile g = GgufFile.open(p)) {
            double[][] ref = ggufReference(g, 8, 8, 64, true).logits(toks);
            // F16 matrices: the activations are rounded to F16 as ggml does (StoredWeightsTest)
            assertThat(Reference64.relError(got[0], ref)).isLessThan(StoredWeightsTest.activationRounding(GgmlType.F16));
            assertThat(Reference64.relError(got[1], ref)).isLessThan(StoredWeightsTest.activationRounding(GgmlType.F16));
            double[][] wrong = ggufReference(g, 8, 8, 64, false).logits(toks);
            assertThat(Reference64.relError(got[0], wrong)).isGreaterThan(1e-3);
        }
    }

    // ---- Hugging Face safetensors -------------------------------------------------------------

    /** A tiny tokenizer.json: characters a-z, space, and two specials. */
    static void writeTokenizerJson(Path dir, String... specials) throws IOException {
        Map<String, Object> vocab = new LinkedHashMap<>();
        for (char c = 'a'; c <= 'z'; c++) vocab.put(String.valueOf(c), (long) (c - 'a'));
        vocab.put(" ", 26L);
        List<Object> added = new ArrayList<>();
        long id = 27;
        for (String s : specials) {
            vocab.put(s, id);
            Map<String, Object> t = new LinkedHashMap<>();
            t.put("id", id++); t.put("content", s); t.put("special", true);
            added.add(t);
        }
        Map<String, Object> model = new LinkedHashMap<>();
        model.put("type", "BPE"); model.put("vocab", vocab); model.put("merges", new ArrayList<>());
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("model", model); root.put("added_tokens", added);
        Files.writeString(dir.resolve("tokenizer.json"), Json.write(root));
    }

    Path writeHf(String type, int heads, int kvHeads, int D, boolean tied, Map<String, Object> ropeScaling, boolean sharded) throws IOException {
        boolean bias = type.equals("qwen2"), qkNorm = type.equals("qwen3");
        Map<String, float[]> t = randomHf(23, heads, kvHeads, D, tied, bias, qkNorm);
        Path dir = tmp.resolve("hf-" + type + (sharded ? "-sharded" : ""));
        Files.createDirectories(dir);
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("architectures", List.of("X")); c.put("model_type", type); c.put("vocab_size", (long) VOCAB);
        c.put("hidden_size", (long) DIM); c.put("num_hidden_layers", (long) LAYERS); c.put("num_attention_heads", (long) heads);
        c.put("num_key_value_heads", (long) kvHeads); c.put("head_dim", (long) D); c.put("intermediate_size", (long) FFN);
        c.put("rms_norm_eps", 1e-6); c.put("rope_theta", 10000.0); c.put("max_position_embeddings", 512L);
        c.put("tie_word_embeddings", tied); c.put("hidden_act", "silu"); c.put("eos_token_id", List.of(27L, 28L));
        if (ropeScaling != null) c.put("rope_scaling", ropeScaling);
        Files.writeString(dir.resolve("config.json"), Json.writePretty(c));
        writeTokenizerJson(dir, "<|im_start|>", "<|im_end|>");
        List<String> names = new ArrayList<>(t.keySet());
        if (!sharded) {
            SafetensorsWriter w = new SafetensorsWriter();
            for (String n : names) w.putF32(n, shapeOf(n, heads, kvHeads, D), t.get(n));
            w.write(dir.resolve("model.safetensors"));
        } else {
            Map<String, Object> map = new LinkedHashMap<>();
            SafetensorsWriter a = new SafetensorsWriter(), b = new SafetensorsWriter();
            for (int i = 0; i < names.size(); i++) {
                String n = names.get(i);
                (i % 2 == 0 ? a : b).putF32(n, shapeOf(n, heads, kvHeads, D), t.get(n));
                map.put(n, i % 2 == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
            }
            a.write(dir.resolve("model-00001-of-00002.safetensors"));
            b.write(dir.resolve("model-00002-of-00002.safetensors"));
            Files.writeString(dir.resolve("model.safetensors.index.json"), Json.write(Map.of("metadata", Map.of(), "weight_map", map)));
        }
        return dir;
    }

    static Reference64 hfReference(Path dir, int heads, int kvHeads, int D, boolean bias, boolean qkNorm) {
        Map<String, float[]> t = randomHf(23, heads, kvHeads, D, false, bias, qkNorm);
        Reference64 r = Reference64.hf(t::get);
        r.vocab = VOCAB; r.dim = DIM; r.layers = LAYERS; r.heads = heads; r.kvHeads = kvHeads; r.headDim = D; r.rot = D;
        r.ffn = FFN; r.eps = 1e-6; r.interleaved = false; r.qkvBias = bias; r.qkNorm = qkNorm;
        return r.plainRope(10000);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "llama|4|2|16|false|linear|false",
            "llama|4|1|16|false|llama3|true",
            "qwen2|4|2|16|false|none|true",
            "qwen3|4|2|32|true|none|false"})
    void safetensorsLogitsMatchTheFloat64Reference(String type, int heads, int kvHeads, int D, boolean tied, String scaling, boolean sharded) throws IOException {
        Map<String, Object> rs = switch (scaling) {
            case "linear" -> Map.of("type", "linear", "factor", 4.0);
            case "llama3" -> Map.of("rope_type", "llama3", "factor", 8.0, "low_freq_factor", 1.0, "high_freq_factor", 4.0,
                    "original_max_position_embeddings", 64L);
            default -> null;
        };
        Path dir = writeHf(type, heads, kvHeads, D, tied, rs, sharded);
        ModelLoader.LoadedModel lm = ModelLoader.load(dir);
        assertThat(lm.format()).isEqualTo(ModelLoader.Format.SAFETENSORS);
        assertThat(lm.stopIds()).contains(27, 28);
        assertThat(lm.chat()).isEqualTo(ChatTemplate.CHATML);
        Reference64 r = hfReference(dir, heads, kvHeads, D, type.equals("qwen2"), type.equals("qwen3"));
        if (tied) r.head = "none";
        if (scaling.equals("linear")) for (int i = 0; i < r.invFreq.length; i++) r.invFreq[i] /= 4;
        if (scaling.equals("llama3")) {
            // Hugging Face _compute_llama3_parameters, written out
            double lowWl = 64 / 1.0, highWl = 64 / 4.0;
            for (int i = 0; i < r.invFreq.length; i++) {
                double f = r.invFreq[i], wl = 2 * Math.PI / f;
                if (wl < highWl) continue;
                if (wl > lowWl) r.invFreq[i] = f / 8;
                else {
                    double smooth = (64 / wl - 1.0) / (4.0 - 1.0);
                    r.invFreq[i] = (1 - smooth) * f / 8 + smooth * f;
                }
            }
        }
        int[] toks = tokens(9, 6);
        double[][] ref = r.logits(toks);
        float[][] got = runBoth(lm.model(), toks);
        assertThat(Reference64.relError(got[0], ref)).as("prefill").isLessThan(1e-4);
        assertThat(Reference64.relError(got[1], ref)).as("incremental").isLessThan(1e-4);
        assertThat(lm.promptIds("ab", true)).containsExactly(0, 1);
        int[] chat = lm.promptIds("ab", false);
        assertThat(chat[0]).isEqualTo(27);
        assertThat(chat).contains(28, 0, 1);
    }

    /**
     * Sliding windows as transformers applies them (context 512, two layers): Mistral on every layer when
     * sliding_window is set; Qwen2/Qwen3 from layer_types, else on layers ≥ max_window_layers when
     * use_sliding_window is true; a window as long as the context is full attention.
     */
    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "mistral|{\"sliding_window\": 64}|window:size=64,window:size=64",
            "mistral|{\"sliding_window\": null}|dense,dense",
            "mistral|{\"sliding_window\": 4096}|dense,dense",
            "qwen2|{\"sliding_window\": 64, \"use_sliding_window\": false, \"max_window_layers\": 0}|dense,dense",
            "qwen2|{\"sliding_window\": 64, \"use_sliding_window\": true, \"max_window_layers\": 2}|dense,dense",
            "qwen2|{\"sliding_window\": 64, \"use_sliding_window\": true, \"max_window_layers\": 1}|dense,window:size=64",
            "qwen2|{\"sliding_window\": 64, \"use_sliding_window\": true, \"max_window_layers\": 0}|window:size=64,window:size=64",
            "qwen3|{\"sliding_window\": 64, \"layer_types\": [\"sliding_attention\", \"full_attention\"]}|window:size=64,dense",
            "llama|{\"sliding_window\": 64}|dense,dense"})
    void slidingWindowsAsTransformersAppliesThem(String type, String extra, String expected) throws IOException {
        Path dir = writeHf(type, 4, 2, 16, false, null, false);
        Map<String, Object> c = new LinkedHashMap<>(Json.parseObject(Files.readString(dir.resolve("config.json")), "config.json"));
        c.putAll(Json.parseObject(extra, "extra"));
        Files.writeString(dir.resolve("config.json"), Json.writePretty(c));
        assertThat(String.join(",", ModelLoader.config(dir).attentionSpecs())).isEqualTo(expected);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "{\"sliding_window\": \"64\"}|sliding_window",
            "{\"sliding_window\": 64, \"use_sliding_window\": true, \"max_window_layers\": 1.5}|max_window_layers",
            "{\"layer_types\": [\"full_attention\"]}|layer_types",
            "{\"layer_types\": [\"full_attention\", \"chunked_attention\"]}|layer_types[1]"})
    void badSlidingWindowFieldsAreRefusedByName(String extra, String field) throws IOException {
        Path dir = writeHf("qwen2", 4, 2, 16, false, null, false);
        Map<String, Object> c = new LinkedHashMap<>(Json.parseObject(Files.readString(dir.resolve("config.json")), "config.json"));
        c.putAll(Json.parseObject(extra, "extra"));
        Files.writeString(dir.resolve("config.json"), Json.writePretty(c));
        assertThatThrownBy(() -> ModelLoader.config(dir)).isInstanceOf(LongspanException.class).hasMessageContaining(field).hasMessageContaining("config.json");
    }

    // ---- export -------------------------------------------------------------------------------

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "false|2|kind=rope,base=10000,pairing=half",
            "true|1|kind=linear,base=500000,factor=2,pairing=half",
            "false|2|kind=rope,base=10000,pairing=interleaved"})
    void exportThenLoadGivesIdenticalLogits(boolean tied, int kvHeads, String rope) {
        ModelConfig c = new ModelConfig(ByteTokenizer.VOCAB, 32, 2, 2, kvHeads, 16, 64, 1e-5f, tied, rope,
                Collections.nCopies(2, "dense"), "byte", 128);
        Transformer m = new Transformer(c);
        m.initialize(3);
        SplittableRandom r = new SplittableRandom(9);
        for (int i = 0; i < m.params.length; i++) m.params[i] += (float) r.nextDouble(-0.1, 0.1);
        Path out = tmp.resolve("export.gguf");
        GgufExport.export(m, out, "test", GgmlType.F32);
        ModelLoader.LoadedModel lm = ModelLoader.load(out);
        Transformer back = lm.model();
        assertThat(back.config.tiedEmbeddings()).isEqualTo(tied);
        int[] toks = lm.promptIds("Hello, world! ünï", true);
        assertThat(toks).containsExactly(ByteTokenizer.INSTANCE.encode("Hello, world! ünï"));
        assertThat(lm.tokenizer().decode(toks)).isEqualTo("Hello, world! ünï");
        assertThat(lm.stopIds()).contains(ByteTokenizer.EOS);
        float[] a = new InferenceSession(m, toks.length).feed(toks, 0, toks.length, toks.length);
        float[] b = new InferenceSession(back, toks.length).feed(toks, 0, toks.length, toks.length);
        if (rope.contains("half")) assertThat(b).containsExactly(a);  // the same weights after permute + un-permute
        else for (int i = 0; i < a.length; i++) assertThat(b[i]).isCloseTo(a[i], org.assertj.core.data.Offset.offset(1e-4f * (1 + Math.abs(a[i]))));
        try (GgufFile g = GgufFile.open(out)) {
            assertThat(g.getString("general.architecture")).isEqualTo("llama");
            assertThat(g.getInt("llama.attention.head_count_kv")).isEqualTo(kvHeads);
            assertThat(g.getInt("llama.rope.dimension_count")).isEqualTo(16);
            assertThat(g.hasTensor("output.weight")).isEqualTo(!tied);
            assertThat(g.getStringArray("tokenizer.ggml.tokens")[65]).isEqualTo("<0x41>");
            // llama.cpp's interleaved rotation on the exported weights equals ours on the originals
            if (rope.contains("half")) {
                Reference64 ref = ggufReference(g, 2, kvHeads, 16, true);
                if (rope.contains("linear")) { ref.plainRope(500000); for (int i = 0; i < ref.invFreq.length; i++) ref.invFreq[i] /= 2; }
                assertThat(Reference64.relError(a, ref.logits(toks))).isLessThan(1e-4);
            }
        }
    }

    @Test
    void longspanModelDirectoriesStillLoad() {
        ModelConfig c = new ModelConfig(ByteTokenizer.VOCAB, 16, 1, 2, 1, 8, 32, 1e-5f, true, "kind=rope,base=10000,pairing=half",
                List.of("dense"), "byte", 64);
        Transformer m = new Transformer(c);
        m.initialize(1);
        LongspanFormat.save(tmp, m);
        ModelLoader.LoadedModel lm = ModelLoader.load(tmp);
        assertThat(lm.format()).isEqualTo(ModelLoader.Format.LONGSPAN);
        assertThat(lm.model().params).containsExactly(m.params);
        assertThat(lm.tokenizer()).isSameAs(ByteTokenizer.INSTANCE);
        assertThat(lm.chat()).isEqualTo(ChatTemplate.NONE);
        ModelLoader.LoadedModel o = lm.withOverrides("window:size=4", "kind=yarn,base=10000,factor=4,orig=64");
        assertThat(o.model().params).isSameAs(lm.model().params);
        assertThat(o.model().config.attentionSpecs()).containsExactly("window:size=4");
    }

    // ---- bad input ----------------------------------------------------------------------------

    @Test
    void badGgufFilesFailWithOneClearError() throws IOException {
        Path good = writeGguf("llama", GgmlType.F32, false, 4, 2, 16, "none", 10000);
        byte[] bytes = Files.readAllBytes(good);
        Path trunc = tmp.resolve("trunc.gguf");
        Files.write(trunc, java.util.Arrays.copyOf(bytes, bytes.length / 2));
        assertThatThrownBy(() -> ModelLoader.load(trunc)).isInstanceOf(LongspanException.class).hasMessageContaining("trunc.gguf");
        Path magic = tmp.resolve("magic.gguf");
        byte[] b2 = bytes.clone();
        b2[0] = 'X';
        Files.write(magic, b2);
        assertThatThrownBy(() -> ModelLoader.load(magic)).isInstanceOf(LongspanException.class).hasMessageContaining("magic.gguf").hasMessageContaining("magic");

        GgufWriter w = new GgufWriter().putString("general.architecture", "gpt2");
        GgufExport.putByteTokenizer(w);
        Path arch = tmp.resolve("arch.gguf");
        w.write(arch);
        assertThatThrownBy(() -> ModelLoader.load(arch)).isInstanceOf(LongspanException.class).hasMessageContaining("arch.gguf").hasMessageContaining("'gpt2'");

        // a missing tensor, a wrong shape, an undequantizable type, a gpt2 tokenizer without merges
        assertThatThrownBy(() -> ModelLoader.load(variant("missing", "blk.1.ffn_up.weight", null)))
                .isInstanceOf(LongspanException.class).hasMessageContaining("missing tensor 'blk.1.ffn_up.weight'");
        assertThatThrownBy(() -> ModelLoader.load(variant("shape", "blk.0.ffn_up.weight", "shape")))
                .isInstanceOf(LongspanException.class).hasMessageContaining("blk.0.ffn_up.weight").hasMessageContaining("shape");
        assertThatThrownBy(() -> ModelLoader.load(variant("type", "blk.0.ffn_up.weight", "type")))
                .isInstanceOf(LongspanException.class).hasMessageContaining("blk.0.ffn_up.weight").hasMessageContaining("I32");
        assertThatThrownBy(() -> ModelLoader.load(variant("merges", null, "gpt2")))
                .isInstanceOf(LongspanException.class).hasMessageContaining("merges");
        // llama.cpp's required keys: refused, naming the key
        assertThatThrownBy(() -> ModelLoader.load(variant("nokeys", null, "nokeys")))
                .isInstanceOf(LongspanException.class).hasMessageContaining("llama.context_length").hasMessageNotContaining("\n");
    }

    // a llama GGUF with one tensor dropped or broken, or a gpt2 tokenizer without merges
    Path variant(String name, String tensor, String how) {
        Map<String, float[]> hf = randomHf(11, 4, 2, 16, false, false, false);
        GgufWriter w = new GgufWriter().putString("general.architecture", "llama")
                .putU32("llama.embedding_length", DIM).putU32("llama.block_count", LAYERS).putU32("llama.feed_forward_length", FFN)
                .putU32("llama.attention.head_count", 4).putU32("llama.attention.head_count_kv", 2)
                .putU32("llama.context_length", 256).putF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        if ("nokeys".equals(how)) w = new GgufWriter().putString("general.architecture", "llama")
                .putU32("llama.embedding_length", DIM).putU32("llama.block_count", LAYERS).putU32("llama.feed_forward_length", FFN)
                .putU32("llama.attention.head_count", 4).putU32("llama.attention.head_count_kv", 2);
        if ("gpt2".equals(how)) {
            w.putString("tokenizer.ggml.model", "gpt2").putStringArray("tokenizer.ggml.tokens", new String[]{"a", "b"});
        } else {
            GgufExport.putByteTokenizer(w);
        }
        for (var e : hf.entrySet()) {
            String gn = GgufFormat.ggufName(e.getKey());
            long[] s = shapeOf(e.getKey(), 4, 2, 16);
            long[] ne = s.length == 1 ? new long[]{s[0]} : new long[]{s[1], s[0]};
            if (gn.equals(tensor)) {
                if (how == null) continue;
                if (how.equals("shape")) { w.tensorF32(gn, new long[]{ne[0] / 2, ne[1] * 2}, e.getValue()); continue; }
                if (how.equals("type")) {
                    long n = ne[0] * ne[1] * GgmlType.I32.typeSize;      // an integer type: no weights
                    w.tensorRaw(gn, GgmlType.I32, ne, new byte[(int) n]);
                    continue;
                }
            }
            w.tensorF32(gn, ne, e.getValue());
        }
        Path p = tmp.resolve(name + ".gguf");
        w.write(p);
        return p;
    }

    @Test
    void badSafetensorsDirectoriesFailWithOneClearError() throws IOException {
        Path dir = writeHf("llama", 4, 2, 16, false, null, false);
        Path cfg = dir.resolve("config.json");
        String good = Files.readString(cfg);
        Files.writeString(cfg, good.replace("\"llama\"", "\"gpt_neox\""));
        assertThatThrownBy(() -> ModelLoader.load(dir)).isInstanceOf(LongspanException.class).hasMessageContaining("'gpt_neox'");
        Files.writeString(cfg, good.replace("\"intermediate_size\": 96", "\"intermediate_size\": 95"));
        assertThatThrownBy(() -> ModelLoader.load(dir)).isInstanceOf(LongspanException.class)
                .hasMessageContaining("model.safetensors").hasMessageContaining("gate_proj").hasMessageContaining("shape");
        Files.writeString(cfg, good.replace("\"tie_word_embeddings\": false", "\"tie_word_embeddings\": false, \"rope_scaling\": {\"type\": \"longrope\"}"));
        assertThatThrownBy(() -> ModelLoader.load(dir)).isInstanceOf(LongspanException.class).hasMessageContaining("longrope");
        Files.writeString(cfg, good);
        Files.delete(dir.resolve("tokenizer.json"));
        assertThatThrownBy(() -> ModelLoader.load(dir)).isInstanceOf(LongspanException.class).hasMessageContaining("tokenizer.json");
        writeTokenizerJson(dir);
        new SafetensorsWriter().putF32("model.embed_tokens.weight", new long[]{VOCAB, DIM}, new float[VOCAB * DIM]).write(dir.resolve("model.safetensors"));
        assertThatThrownBy(() -> ModelLoader.load(dir)).isInstanceOf(LongspanException.class).hasMessageContaining("missing tensor");
    }
}

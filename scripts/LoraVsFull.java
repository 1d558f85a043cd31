import dev.longspan.format.GgufExport;
import dev.longspan.format.LongspanFormat;
import dev.longspan.io.Json;
import dev.longspan.kernel.GgmlType;
import dev.longspan.model.Lora;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import dev.longspan.train.LoraTraining;
import dev.longspan.train.TextCorpus;
import dev.longspan.train.TrainConfig;
import dev.longspan.train.Trainer;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * LoRA against full fine-tuning of one model, in one JVM, the modes alternated round after round:
 * seconds per optimiser step, wall and CPU (the process's CPU time, which a machine shared with
 * other work disturbs less; median of the timed steps after two warm-up steps) and the heap the
 * run holds (live heap after a full GC with the trainer and its training pass alive, less the live
 * heap before it was made); medians over the rounds after the first, which warms the JIT up. Usage (scripts/lora-vs-full.sh wraps it):
 *   java -cp longspan.jar scripts/LoraVsFull.java MODEL_DIR|CONFIG.json SEQ_LEN STEPS ROUNDS TEXT...
 * A CONFIG.json (a model config, or a train config's model) gets random weights, saved as a model directory and as a Q8_0
 * GGUF; a model directory is used as it is (and exported to Q8_0 when its RoPE allows).
 */
public class LoraVsFull {
    record Mode(String name, Path base, LoraTraining.Setup lora) {}

    public static void main(String[] args) throws Exception {
        Path model = Path.of(args[0]);
        int seq = Integer.parseInt(args[1]), steps = Integer.parseInt(args[2]), rounds = Math.max(2, Integer.parseInt(args[3]));
        List<Path> text = new ArrayList<>();
        for (int i = 4; i < args.length; i++) text.add(Path.of(args[i]));
        Path tmp = Files.createTempDirectory("lora-vs-full");
        Path dir = model;
        if (Files.isRegularFile(model)) {
            Map<String, Object> j = Json.parseObject(Files.readString(model), model.toString());
            @SuppressWarnings("unchecked") Map<String, Object> mj = j.get("model") instanceof Map<?, ?> mm ? (Map<String, Object>) mm : j;
            ModelConfig c = ModelConfig.fromJson(mj, model.toString());
            Transformer m = new Transformer(c);
            m.initialize(1);
            dir = tmp.resolve("base");
            LongspanFormat.save(dir, m);
        }
        Transformer base = LongspanFormat.read(dir);
        ModelConfig c = base.config;
        Path gguf = null;
        try {
            gguf = tmp.resolve("base-q8.gguf");
            GgufExport.export(base, gguf, "base", GgmlType.Q8_0);
        } catch (RuntimeException e) {
            System.out.println("# no Q8_0 GGUF: " + e.getMessage());
            gguf = null;
        }
        base = null;
        Lora.Spec r16 = new Lora.Spec(16, 32, EnumSet.of(Lora.Target.Q, Lora.Target.K, Lora.Target.V, Lora.Target.O));
        List<Mode> modes = new ArrayList<>();
        modes.add(new Mode("full fine-tuning", dir, null));
        modes.add(new Mode("LoRA r16 q,k,v,o", dir, new LoraTraining.Setup(dir, r16, Set.of())));
        modes.add(new Mode("LoRA r16 q,k,v,o + embeddings,norms", dir, new LoraTraining.Setup(dir, r16, EnumSet.allOf(LoraTraining.Also.class))));
        if (gguf != null) modes.add(new Mode("LoRA r16 q,k,v,o on the Q8_0 GGUF", gguf, new LoraTraining.Setup(gguf, r16, Set.of())));
        Map<String, Object> train = new LinkedHashMap<>();
        train.put("seq_len", (long) seq);
        train.put("batch", 1L);
        train.put("steps", 1000L);
        train.put("lr", 1e-3);
        train.put("warmup", 2L);
        train.put("recompute", false);
        TrainConfig tc = TrainConfig.fromJson(new LinkedHashMap<>(Map.of("model", c.toJson(), "train", train)), "lora-vs-full");
        System.out.printf("# %s: %,d parameters, seq_len %d, %d timed steps x %d rounds, %d threads%n",
                model, c.parameterCount(), seq, steps, rounds, dev.longspan.tensor.Parallel.threads());
        Map<String, List<Double>> secs = new LinkedHashMap<>(), cpuSecs = new LinkedHashMap<>();
        Map<String, List<Double>> heap = new LinkedHashMap<>();
        Map<String, Long> trained = new LinkedHashMap<>();
        try (TextCorpus corpus = new TextCorpus(text, 0.01)) {
            for (int round = 0; round < rounds; round++) {
                for (Mode m : modes) {
                    long before = live();
                    Trainer t = new Trainer(tc, corpus, tmp.resolve("run"), new Trainer.Listener() {}, m.lora());
                    if (m.lora() == null) t.startFrom(dir);
                    else t.start(false);
                    t.trainStep();
                    t.trainStep();
                    double[] s = new double[steps], cpu = new double[steps];
                    for (int i = 0; i < steps; i++) {
                        long c0 = cpuNanos();
                        s[i] = t.trainStep().seconds();
                        cpu[i] = (cpuNanos() - c0) / 1e9;
                    }
                    long held = live() - before;
                    Arrays.sort(s);
                    Arrays.sort(cpu);
                    if (round > 0) {
                        secs.computeIfAbsent(m.name(), k -> new ArrayList<>()).add(s[steps / 2]);
                        cpuSecs.computeIfAbsent(m.name(), k -> new ArrayList<>()).add(cpu[steps / 2]);
                        heap.computeIfAbsent(m.name(), k -> new ArrayList<>()).add((double) held);
                    }
                    trained.put(m.name(), (long) t.trained().length);
                    System.out.printf("# round %d %-40s %.3f s/step  %.3f CPU-s/step  %,.1f MB%n", round, m.name(), s[steps / 2], cpu[steps / 2], held / 1048576.0);
                }
            }
        }
        String full = modes.get(0).name();
        double fullS = median(secs.get(full)), fullC = median(cpuSecs.get(full));
        double fullH = median(heap.get(full));
        System.out.println("| run | trained parameters | s/step | vs full | CPU-s/step | vs full | heap held | vs full |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|---:|");
        for (Mode m : modes) {
            double s = median(secs.get(m.name()));
            double h = median(heap.get(m.name()));
            double cs = median(cpuSecs.get(m.name()));
            System.out.printf("| %s | %,d | %.3f | %.2f | %.3f | %.2f | %,.1f MB | %.2f |%n", m.name(), trained.get(m.name()), s, s / fullS, cs, cs / fullC, h / (1 << 20), h / fullH);
        }
        delete(tmp);
    }

    static void delete(Path p) throws java.io.IOException {
        try (var s = Files.walk(p)) {
            for (Path q : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(q);
        }
    }

    static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    static double median(List<Double> v) {
        double[] a = v.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return a[a.length / 2];
    }

    // live heap after a full collection
    static long live() {
        for (int i = 0; i < 2; i++) System.gc();
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }
}

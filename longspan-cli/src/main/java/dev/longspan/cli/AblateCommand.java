package dev.longspan.cli;

import dev.longspan.eval.AttentionCost;
import dev.longspan.eval.HeldOutSplit;
import dev.longspan.io.AtomicFiles;
import dev.longspan.io.IoErrors;
import dev.longspan.model.ModelConfig;
import dev.longspan.train.TrainConfig;
import dev.longspan.train.Trainer;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The ablation study of docs/ABLATIONS.md in three steps that scripts/ablate.sh chains around
 * {@code train} and {@code perplexity}: the held-out split of the texts, one JSON row per trained
 * plan, and the tables and plots rendered from the rows.
 */
@Command(name = "ablate", mixinStandardHelpOptions = true,
        description = {"The attention-plan ablations of docs/ABLATIONS.md.",
                "Split the texts, record a trained plan's row, render the tables;",
                "scripts/ablate.sh CONFIG chains them with train and perplexity."},
        subcommands = {AblateCommand.Split.class, AblateCommand.Row.class, AblateCommand.Render.class})
final class AblateCommand implements Runnable {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(), "name a step: split, row or render");
    }

    @Command(name = "split", mixinStandardHelpOptions = true,
            description = {"Write the train/held-out split of the project's texts.",
                    "The Bible is cut where Matthew begins (Genesis-Malachi trained on,",
                    "Matthew-Revelation held out), the named novels are held out and the",
                    "others trained on; files already there with the same bytes are kept,",
                    "others are never overwritten."})
    static final class Split implements Runnable {
        @Option(names = "--data-dir", paramLabel = "DIR", description = "The shared data directory (default: ${DEFAULT-VALUE}).")
        Path dataDir = Path.of("../shared/data");
        @Option(names = "--hold-out", split = ",", paramLabel = "NOVEL", description = "Novels held out, file names in text/gutenberg (default: ${DEFAULT-VALUE}).")
        List<String> holdOut = List.of("pg98.txt");
        @Option(names = "--out", paramLabel = "DIR", description = "Where train/, heldout/ and split.json go (default: ${DEFAULT-VALUE}).")
        Path out = Path.of("runs/ablate/data");
        @Option(names = "--json", description = "Print one JSON object on standard output.") boolean json;

        @Override
        public void run() {
            Map<String, Object> manifest = HeldOutSplit.write(HeldOutSplit.plan(dataDir, holdOut), dataDir, out);
            if (json) {
                Json.print(manifest);
                return;
            }
            for (Object o : (List<?>) manifest.get("files")) {
                Map<?, ?> f = (Map<?, ?>) o;
                System.out.printf("%-22s %,11d bytes  from %s%n", f.get("file"), ((Number) f.get("to")).longValue() - ((Number) f.get("from")).longValue(), f.get("source"));
            }
            System.out.println("split in " + out);
        }
    }

    @Command(name = "row", mixinStandardHelpOptions = true,
            description = {"Record one trained plan as a JSON row in the rows file.",
                    "The row holds its config, training tokens/s and loss (from the run's",
                    "metrics.jsonl), attention FLOPs per token counted from the tile plans at",
                    "the training length and every scored length, and the held-out",
                    "perplexities (perplexity.json files of `longspan perplexity`).",
                    "A row of the same name is replaced."})
    static final class Row implements Runnable {
        @Option(names = "--config", required = true, paramLabel = "FILE.json", description = "The plan's training config (its file name is the row's name).") Path config;
        @Option(names = "--run", required = true, paramLabel = "DIR", description = "The trained run directory (metrics.jsonl).") Path run;
        @Option(names = "--perplexity", required = true, arity = "1..*", paramLabel = "FILE", description = "perplexity.json files of the run, one per held-out text.") List<Path> perplexity;
        @Option(names = "--rows", paramLabel = "FILE", description = "The rows file, one JSON object a line (default: ${DEFAULT-VALUE}).") Path rows = Path.of("docs/ablations/rows.jsonl");
        @Option(names = "--attention", paramLabel = "SPEC",
                description = {"The plan the perplexities were scored with when it is not the config's (the trained weights read another way,",
                        "e.g. with pos=selected): recorded as the row's attention beside the trained one, its pairs counted. Needs --name."})
        String readAs;
        @Option(names = "--name", paramLabel = "NAME", description = "The row's name (default: the config's file name).") String name;
        @Option(names = "--json", description = "Print the row as one JSON object on standard output.") boolean json;
        @Mixin Main.ComputeOptions compute;

        @Override
        public void run() {
            compute.apply();
            if (readAs != null && name == null) throw new LongspanException("--attention: give the row a --name of its own (the trained plan keeps the config's)");
            Map<String, Object> root = readJson(config);
            TrainConfig tc = TrainConfig.fromJson(root, config.toString());
            ModelConfig scored = readAs == null ? tc.model()
                    : tc.model().withAttention(dev.longspan.model.LayerPatterns.expand(readAs, tc.model().layers(), "--attention"));
            List<Map<String, Object>> existing = readRows(rows);
            List<Map<String, Object>> metrics = Trainer.readMetrics(run);
            if (metrics.isEmpty()) throw new LongspanException(run.resolve("metrics.jsonl") + ": no training metrics (train the plan first)");
            Map<String, List<Object>> ppl = new LinkedHashMap<>();
            TreeSet<Integer> lengths = new TreeSet<>(List.of(tc.seqLen()));
            for (Path p : perplexity) {
                Map<String, Object> r = readJson(p);
                if (!(r.get("data") instanceof String data) || !(r.get("points") instanceof List<?> pts) || pts.isEmpty()) {
                    throw new LongspanException(p + ": not a perplexity.json of `longspan perplexity` (fields data, points)");
                }
                String text = stem(Path.of(data));
                if (ppl.containsKey(text)) throw new LongspanException("--perplexity: two files score the same text " + text);
                List<Object> points = new ArrayList<>();
                for (Object o : pts) {
                    Map<?, ?> pt = (Map<?, ?>) o;
                    int length = ((Number) pt.get("length")).intValue();
                    lengths.add(length);
                    Map<String, Object> q = new LinkedHashMap<>();
                    q.put("length", length);
                    q.put("perplexity", pt.get("perplexity"));
                    q.put("tokens_scored", pt.get("tokens_scored"));
                    points.add(q);
                }
                ppl.put(text, points);
            }
            double seconds = 0, loss = 0;
            long tokens = 0;
            int last = Math.min(10, metrics.size());
            Object evalLoss = null;
            for (int i = 0; i < metrics.size(); i++) {
                Map<String, Object> m = metrics.get(i);
                long t = (long) ((Number) m.get("seq_len")).intValue() * tc.batch();
                tokens += t;
                seconds += t / ((Number) m.get("tokens_per_s")).doubleValue();
                if (i >= metrics.size() - last) loss += ((Number) m.get("loss")).doubleValue() / last;
                if (m.get("eval_loss") != null) evalLoss = m.get("eval_loss");
            }
            List<Object> cost = new ArrayList<>();
            for (int length : lengths) {
                AttentionCost.Cost c = AttentionCost.of(scored, length);
                Map<String, Object> a = new LinkedHashMap<>();
                a.put("length", length);
                a.put("pairs_per_token", c.pairsPerToken());
                a.put("flops_per_token", c.flopsPerToken());
                cost.add(a);
            }
            Map<String, Object> row = new LinkedHashMap<>();
            // the config's plan as written (e.g. one masformer spec for all layers; dense when it names none)
            Object written = root.get("model") instanceof Map<?, ?> model ? model.get("attention") : null;
            String trainedAttention = written != null ? written.toString() : String.join(",", tc.model().attentionSpecs());
            row.put("name", name != null ? name : stem(config));
            row.put("config", config.toString());
            row.put("attention", readAs != null ? readAs : trainedAttention);
            if (readAs != null) row.put("trained_attention", trainedAttention);
            row.put("layers", scored.attentionSpecs());
            row.put("rope", String.valueOf(((Map<?, ?>) root.get("model")).get("rope")));
            row.put("parameters", tc.model().parameterCount());
            row.put("train_length", tc.seqLen());
            row.put("steps", metrics.size());
            row.put("train_tokens", tokens);
            row.put("train_seconds", seconds);
            row.put("tokens_per_s", tokens / seconds);
            row.put("final_loss", loss);
            row.put("final_eval_loss", evalLoss);
            row.put("attention_cost", cost);
            row.put("perplexity", ppl);
            List<Map<String, Object>> all = new ArrayList<>(existing);
            all.removeIf(r -> row.get("name").equals(r.get("name")));
            all.add(row);
            StringBuilder sb = new StringBuilder();
            for (Map<String, Object> r : all) sb.append(dev.longspan.io.Json.write(r)).append('\n');
            AtomicFiles.writeString(rows, sb.toString());
            if (json) {
                Json.print(row);
            } else {
                System.out.printf("row %s: %,.0f training tokens/s, attention %.2f MFLOP/token at %s; written to %s%n", row.get("name"),
                        tokens / seconds, AttentionCost.of(scored, tc.seqLen()).flopsPerToken() / 1e6, Sizes.format(tc.seqLen()), rows);
            }
        }
    }

    @Command(name = "render", mixinStandardHelpOptions = true,
            description = {"Render the ablation tables and plots from the rows.",
                    "The measurements, and each paper's claim beside its measurement with a",
                    "verdict, go into the markdown file between its ablate markers (text",
                    "outside them is kept); the plots are PNG files."})
    static final class Render implements Runnable {
        @Option(names = "--rows", paramLabel = "FILE", description = "The rows file of `longspan ablate row` (default: ${DEFAULT-VALUE}).") Path rows = Path.of("docs/ablations/rows.jsonl");
        @Option(names = "--out", paramLabel = "FILE.md", description = "The markdown file (default: ${DEFAULT-VALUE}).") Path out = Path.of("docs/ABLATIONS.md");
        @Option(names = "--img", paramLabel = "DIR", description = "Where the plots go, linked relative to the markdown file (default: ${DEFAULT-VALUE}).") Path img = Path.of("docs/ablations");
        @Option(names = "--json", description = "Print one JSON object (the files written) on standard output.") boolean json;

        @Override
        public void run() {
            List<Map<String, Object>> all = readRows(rows);
            if (all.isEmpty()) throw new LongspanException(rows + ": no rows (run scripts/ablate.sh CONFIG first)");
            all.sort(Comparator.comparingInt(Render::rank).thenComparing(r -> r.get("name").toString()));
            String document = "";
            if (Files.exists(out)) {
                try {
                    document = Files.readString(out);
                } catch (IOException e) {
                    throw new LongspanException(out + ": cannot read: " + IoErrors.reason(e));
                }
            }
            Path base = out.toAbsolutePath().getParent();
            String link = base.relativize(img.toAbsolutePath()).toString().replace('\\', '/');
            String generated = AblationReport.render(all, link);
            AtomicFiles.checkWritableDirectory(img);
            List<Path> written = new ArrayList<>(AblationReport.writeCharts(all, img));
            AtomicFiles.writeString(out, AblationReport.splice(document, generated));
            written.add(out);
            if (json) {
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("rows", all.size());
                r.put("written", written.stream().map(Path::toString).toList());
                Json.print(r);
                return;
            }
            for (Path p : written) System.out.println("wrote " + p);
        }

        // the order of the tables: the baseline, sparse-only, MASFormer, LongNet, select-and-merge
        private static int rank(Map<String, Object> r) {
            String n = r.get("name").toString();
            String[] order = {"dense", "window", "block", "masformer-1", "masformer-2", "masformer-4", "masformer", "dilated", "selectmerge"};
            for (int i = 0; i < order.length; i++) if (n.startsWith(order[i])) return i;
            return order.length;
        }
    }

    static String stem(Path p) {
        String n = p.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return dot > 0 ? n.substring(0, dot) : n;
    }

    static Map<String, Object> readJson(Path p) {
        return dev.longspan.io.Json.parseObject(new String(IoErrors.readUserFile(p), java.nio.charset.StandardCharsets.UTF_8), p.toString());
    }

    /** The rows file, one JSON object a line; a missing file has no rows. */
    static List<Map<String, Object>> readRows(Path rows) {
        if (!Files.exists(rows)) return new ArrayList<>();
        List<Map<String, Object>> out = new ArrayList<>();
        try {
            int line = 0;
            for (String l : Files.readAllLines(rows)) {
                line++;
                if (l.isBlank()) continue;
                Map<String, Object> r = dev.longspan.io.Json.parseObject(l, rows + ":" + line);
                if (!(r.get("name") instanceof String)) throw new LongspanException(rows + ":" + line + ": a row without a name");
                out.add(r);
            }
        } catch (IOException e) {
            throw new LongspanException(rows + ": cannot read: " + IoErrors.reason(e));
        }
        return out;
    }
}

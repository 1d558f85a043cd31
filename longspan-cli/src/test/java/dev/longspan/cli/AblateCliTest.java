package dev.longspan.cli;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The ablation steps without training: the split of a small data directory, rows made from the
 * committed configs with hand-written metrics and perplexities (so every number of a row is known),
 * and the tables and verdicts rendered from them.
 */
class AblateCliTest {
    @TempDir Path tmp;

    static final Path CONFIGS = Path.of(System.getProperty("user.dir")).getParent().resolve("configs/ablations");

    @Test
    void splitWritesTheTrainAndHeldOutFiles() throws Exception {
        Path data = tmp.resolve("data");
        Files.createDirectories(data.resolve("text/gutenberg"));
        Files.writeString(data.resolve("kjv-verses.txt"), "Mal4:6 Lest I come.\nMat1:1 The book.\n");
        Files.writeString(data.resolve("text/gutenberg/a.txt"), "novel a");
        Files.writeString(data.resolve("text/gutenberg/b.txt"), "novel b");
        Path out = tmp.resolve("split");
        for (int i = 0; i < 2; i++) {   // the second time finds the same bytes and keeps them
            CliRun r = CliRun.of("ablate", "split", "--data-dir", data.toString(), "--hold-out", "b.txt", "--out", out.toString());
            assertThat(r.exit()).as(r.err()).isZero();
            assertThat(r.out()).contains("heldout/kjv-nt.txt").contains("train/a.txt");
        }
        assertThat(Files.readString(out.resolve("train/kjv-ot.txt"))).isEqualTo("Mal4:6 Lest I come.\n");
        assertThat(Files.readString(out.resolve("heldout/kjv-nt.txt"))).isEqualTo("Mat1:1 The book.\n");
        assertThat(Files.readString(out.resolve("heldout/b.txt"))).isEqualTo("novel b");
        assertThat(out.resolve("train/b.txt")).doesNotExist();
    }

    /** A run with 12 steps at 2,048 tokens/s and held-out perplexities at 1K and 2K on two texts. */
    private Path fakeRun(String name, double ppl1k, double ppl2k) throws Exception {
        Path run = tmp.resolve("runs").resolve(name);
        Files.createDirectories(run);
        StringBuilder m = new StringBuilder();
        for (int s = 1; s <= 12; s++) {
            m.append(String.format(Locale.ROOT, "{\"step\":%d,\"loss\":%.1f,\"lr\":0.001,\"grad_norm\":1.0,\"seq_len\":1024,\"tokens_per_s\":2048.0%s}%n",
                    s, s <= 2 ? 9.0 : 2.0, s == 12 ? ",\"eval_loss\":2.5" : ""));
        }
        Files.writeString(run.resolve("metrics.jsonl"), m);
        for (String text : List.of("pg98", "kjv-nt")) {
            double scale = text.equals("pg98") ? 1 : 2;
            Files.createDirectories(run.resolve("ppl-" + text));
            Files.writeString(run.resolve("ppl-" + text + "/perplexity.json"), String.format(Locale.ROOT,
                    "{\"model\": \"%s\", \"data\": \"runs/ablate/data/heldout/%s.txt\", \"tail\": 512, \"points\": ["
                            + "{\"length\": 1024, \"windows\": 1, \"tokens_scored\": 512, \"loss\": 1, \"perplexity\": %f, \"seconds\": 1},"
                            + "{\"length\": 2048, \"windows\": 1, \"tokens_scored\": 512, \"loss\": 1, \"perplexity\": %f, \"seconds\": 1}]}",
                    run, text, ppl1k * scale, ppl2k * scale));
        }
        return run;
    }

    private CliRun row(String name, double ppl1k, double ppl2k, Path rows) throws Exception {
        Path run = fakeRun(name, ppl1k, ppl2k);
        return CliRun.of("ablate", "row", "--config", CONFIGS.resolve(name + ".json").toString(), "--run", run.toString(),
                "--perplexity", run.resolve("ppl-pg98/perplexity.json").toString(), run.resolve("ppl-kjv-nt/perplexity.json").toString(),
                "--rows", rows.toString(), "--json");
    }

    @Test
    void aRowHoldsTheRunsSpeedLossCostAndPerplexity() throws Exception {
        Path rows = tmp.resolve("rows.jsonl");
        CliRun r = row("window", 12, 12.5, rows);
        assertThat(r.exit()).as(r.err()).isZero();
        Map<String, Object> row = dev.longspan.io.Json.parseObject(r.out(), "row");
        assertThat(row).containsEntry("name", "window").containsEntry("train_length", 1024L).containsEntry("steps", 12L)
                .containsEntry("train_tokens", 12L * 2 * 1024).containsEntry("attention", "window:size=256")
                .containsEntry("final_eval_loss", 2.5);
        assertThat((Double) row.get("tokens_per_s")).isCloseTo(2048.0, org.assertj.core.data.Offset.offset(1e-9));
        assertThat((Double) row.get("final_loss")).isCloseTo(2.0, org.assertj.core.data.Offset.offset(1e-12));   // the last 10 steps
        // 8 layers × 4 heads × a causal window of 256 over 1024 positions, 4·32 FLOPs per pair
        long perHead = 256L * 257 / 2 + (1024 - 256) * 256L;
        List<?> cost = (List<?>) row.get("attention_cost");
        Map<?, ?> at1k = (Map<?, ?>) cost.getFirst();
        assertThat(at1k.get("length")).isEqualTo(1024L);
        assertThat((Double) at1k.get("pairs_per_token")).isEqualTo(8.0 * 4 * perHead / 1024);
        assertThat((Double) at1k.get("flops_per_token")).isEqualTo(8.0 * 4 * perHead / 1024 * 4 * 32);
        assertThat(((Map<?, ?>) cost.get(1)).get("length")).isEqualTo(2048L);
        assertThat(((Map<?, ?>) row.get("perplexity")).keySet().stream().map(Object::toString)).containsExactly("pg98", "kjv-nt");

        assertThat(row("window", 13, 13, rows).exit()).isZero();   // the same name again: replaced, not added
        assertThat(Files.readAllLines(rows)).hasSize(1).first().asString().contains("\"perplexity\":13.0");
    }

    @Test
    void renderPutsEachClaimBesideItsMeasurementAndKeepsTheProse() throws Exception {
        Path rows = tmp.resolve("rows.jsonl");
        assertThat(row("dense", 10, 9.5, rows).exit()).isZero();
        assertThat(row("masformer-1-bottom", 10.3, 10, rows).exit()).isZero();    // +3%: competitive
        assertThat(row("masformer-1-top", 11, 10.5, rows).exit()).isZero();       // +10%: not; placements spread 6.8%
        assertThat(row("window", 12, 12, rows).exit()).isZero();                  // +20%: sparse alone falls short
        assertThat(row("block", 9, 9, rows).exit()).isZero();                     // -10%: it does not
        assertThat(row("selectmerge-crdntk", 10.2, 10.4, rows).exit()).isZero(); // +2% beyond the training length: stable
        assertThat(row("selectmerge", 10.2, 13, rows).exit()).isZero();           // +27%: not stable
        Path md = tmp.resolve("docs/ABLATIONS.md"), img = tmp.resolve("docs/ablations");
        Files.createDirectories(md.getParent());
        Files.writeString(md, "# Ablations\n\nHand-written prose.\n");
        CliRun r = CliRun.of("ablate", "render", "--rows", rows.toString(), "--out", md.toString(), "--img", img.toString());
        assertThat(r.exit()).as(r.err()).isZero();
        String doc = Files.readString(md);
        assertThat(doc).startsWith("# Ablations\n\nHand-written prose.\n" + AblationReport.BEGIN).contains("](ablations/perplexity-pg98.png)");
        assertThat(doc).contains("| train tok/s | train loss | held-out loss |");
        assertThat(doc).containsPattern("\\| dense \\| `dense` \\|[^\\n]*\\| 2\\.000 \\| 2\\.500 \\|");   // the last 10 steps' loss, the trainer's last eval
        assertThat(doc.indexOf("| dense |")).isLessThan(doc.indexOf("| window |")).isLessThan(doc.indexOf("| masformer-1-bottom |"))
                .isLessThan(doc.indexOf("| selectmerge |"));
        assertThat(doc).contains("| masformer-1-bottom | kjv-nt +3.0%, pg98 +3.0% vs dense, at 51% of its attention FLOPs | held (+3.0%) |");
        assertThat(doc).contains("| masformer-1-top | kjv-nt +10.0%, pg98 +10.0% vs dense, at 51% of its attention FLOPs | not held (+10.0%, more than 5.0%) |");
        assertThat(doc).contains("1 full layer | bottom 15.450, top 16.500 (spread 6.8%, best bottom) | held (spread 6.8%) |");
        assertThat(doc).contains("| window | kjv-nt +20.0%, pg98 +20.0% vs dense, at 44% of its attention FLOPs | held (+20.0%) |");
        assertThat(doc).contains("| selectmerge-crdntk | kjv-nt 20.400 at 1K → 20.800 at 2K (+2.0%), pg98 10.200 at 1K → 10.400 at 2K (+2.0%) | held (+2.0%) |");
        assertThat(doc).contains("| selectmerge | kjv-nt 20.400 at 1K → 26.000 at 2K (+27.5%), pg98 10.200 at 1K → 13.000 at 2K (+27.5%) | (not stable: +27.5%) |")
                .contains("| dense | kjv-nt 20.000 at 1K → 19.000 at 2K (-5.0%), pg98 10.000 at 1K → 9.500 at 2K (-5.0%) | (stable: -5.0%) |");
        assertThat(doc).contains("| block | kjv-nt -10.0%, pg98 -10.0% vs dense, at 25% of its attention FLOPs | not held (-10.0%, not more than 5.0% worse) |");
        assertThat(doc).contains("| LongNet: longer training contexts help | – | every plan here trains at 1K only | not tested |");
        for (String png : List.of("perplexity-pg98.png", "perplexity-kjv-nt.png", "cost-quality.png")) {
            assertThat(Files.readAllBytes(img.resolve(png))).startsWith(new byte[]{(byte) 0x89, 'P', 'N', 'G'});
        }
        // rendered again after more prose below the tables: one generated part, the prose kept
        Files.writeString(md, Files.readString(md) + "\n## What 2 cores cannot test\n");
        assertThat(CliRun.of("ablate", "render", "--rows", rows.toString(), "--out", md.toString(), "--img", img.toString()).exit()).isZero();
        String again = Files.readString(md);
        assertThat(again.split(java.util.regex.Pattern.quote(AblationReport.BEGIN), -1)).hasSize(2);
        assertThat(again).startsWith("# Ablations\n\nHand-written prose.\n").endsWith(AblationReport.END + "\n\n## What 2 cores cannot test\n");
    }

    @Test
    void aRowReadWithAnotherPlanKeepsTheTrainedOneAndGetsItsOwnVerdict() throws Exception {
        Path rows = tmp.resolve("rows.jsonl");
        assertThat(row("dense", 10, 9.5, rows).exit()).isZero();
        assertThat(row("selectmerge-crdntk", 10.2, 13, rows).exit()).isZero();   // +27% with the trained plan
        // the same weights scored with positions on selected tokens: a second row of its own name
        String spec = "selectmerge:region=64,top=5,merge=1,pos=selected";
        Path run = fakeRun("selectmerge-crdntk-read", 10.2, 10.3);
        CliRun r = CliRun.of("ablate", "row", "--config", CONFIGS.resolve("selectmerge-crdntk.json").toString(), "--run", run.toString(),
                "--perplexity", run.resolve("ppl-pg98/perplexity.json").toString(), run.resolve("ppl-kjv-nt/perplexity.json").toString(),
                "--rows", rows.toString(), "--attention", spec, "--name", "selectmerge-crdntk-read-selected", "--json");
        assertThat(r.exit()).as(r.err()).isZero();
        Map<String, Object> row = dev.longspan.io.Json.parseObject(r.out(), "row");
        assertThat(row).containsEntry("name", "selectmerge-crdntk-read-selected").containsEntry("attention", spec)
                .containsEntry("trained_attention", "selectmerge:region=64,top=5,merge=1");
        assertThat((List<?>) row.get("layers")).allSatisfy(l -> assertThat(l.toString()).contains("pos=selected"));
        assertThat(Files.readAllLines(rows)).hasSize(3);
        Path md = tmp.resolve("A.md");
        assertThat(CliRun.of("ablate", "render", "--rows", rows.toString(), "--out", md.toString(), "--img", tmp.resolve("img").toString()).exit()).isZero();
        String doc = Files.readString(md);
        assertThat(doc).contains("| selectmerge-crdntk | kjv-nt 20.400 at 1K → 26.000 at 2K (+27.5%), pg98 10.200 at 1K → 13.000 at 2K (+27.5%) | not held (+27.5%, more than 5.0%) |")
                .contains("| selectmerge-crdntk-read-selected | kjv-nt 20.400 at 1K → 20.600 at 2K (+1.0%), pg98 10.200 at 1K → 10.300 at 2K (+1.0%) | held (+1.0%) |")
                .contains("| selectmerge-crdntk-read-selected | `" + spec + "` |");

        CliRun unnamed = CliRun.of("ablate", "row", "--config", CONFIGS.resolve("selectmerge-crdntk.json").toString(), "--run", run.toString(),
                "--perplexity", run.resolve("ppl-pg98/perplexity.json").toString(), "--rows", rows.toString(), "--attention", spec);
        assertThat(unnamed.exit()).isEqualTo(2);
        assertThat(unnamed.err()).contains("--name");
        assertThat(Files.readAllLines(rows)).hasSize(3);
    }

    @Test
    void aPlanAlsoTrainedShorterTestsLongNetsLongerTrainingClaim() throws Exception {
        Path rows = tmp.resolve("rows.jsonl");
        assertThat(row("dense", 10, 9.5, rows).exit()).isZero();
        assertThat(row("dilated", 10, 10, rows).exit()).isZero();
        // the same plan and tokens trained at 512: its own config, a row of the same family
        Path shorter = tmp.resolve("dilated-512.json");
        Files.writeString(shorter, Files.readString(CONFIGS.resolve("dilated.json")).replace("\"seq_len\": 1024", "\"seq_len\": 512"));
        assertThat(Files.readString(shorter)).contains("\"seq_len\": 512");
        Path run = fakeRun("dilated-512", 11, 12);
        CliRun r = CliRun.of("ablate", "row", "--config", shorter.toString(), "--run", run.toString(),
                "--perplexity", run.resolve("ppl-pg98/perplexity.json").toString(), run.resolve("ppl-kjv-nt/perplexity.json").toString(),
                "--rows", rows.toString());
        assertThat(r.exit()).as(r.err()).isZero();
        Path md = tmp.resolve("A.md");
        r = CliRun.of("ablate", "render", "--rows", rows.toString(), "--out", md.toString(), "--img", tmp.resolve("img").toString());
        assertThat(r.exit()).as(r.err()).isZero();
        String doc = Files.readString(md);
        // quality at the family's 1K: (10 + 20) / 2 = 15 against (11 + 22) / 2 = 16.5
        assertThat(doc).contains("| LongNet: longer training contexts help | dilated vs dilated-512 | perplexity at 1K: trained at 512 16.500, at 1K 15.000 (-9.1%) | held (-9.1%) |")
                .doesNotContain("every plan here trains at");
        // the shorter run is no second LongNet row of the competitive claim
        assertThat(doc.split("LongNet: a dilated mixture", -1)).hasSize(2);
    }

    @Test
    void spliceRefusesBrokenMarkers() {
        assertThat(AblationReport.splice("", "G\n")).isEqualTo("G\n");
        assertThat(AblationReport.splice("text", "G\n")).isEqualTo("text\nG\n");
        assertThatThrownBy(() -> AblationReport.splice("a " + AblationReport.END + " b " + AblationReport.BEGIN, "G"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("marker");
        assertThatThrownBy(() -> AblationReport.splice("a " + AblationReport.BEGIN, "G")).isInstanceOf(LongspanException.class);
    }

    @Test
    void everyCommittedAblationConfigHasTheSameModelAndBudget() throws Exception {
        List<Path> configs;
        try (var s = Files.list(CONFIGS)) {
            configs = s.filter(p -> p.toString().endsWith(".json")).sorted().toList();
        }
        assertThat(configs).hasSizeGreaterThanOrEqualTo(15);
        Map<String, Object> first = null;
        for (Path c : configs) {
            Map<String, Object> root = dev.longspan.io.Json.parseObject(Files.readString(c), c.toString());
            var tc = dev.longspan.train.TrainConfig.fromJson(root, c.toString());
            Map<String, Object> shape = Map.of("params", tc.model().parameterCount(), "seq", tc.seqLen(), "batch", tc.batch(),
                    "steps", tc.steps(), "lr", tc.lr(), "seed", tc.seed(), "layers", tc.model().layers());
            if (first == null) first = shape;
            assertThat(shape).as(c.toString()).isEqualTo(first);
        }
    }
}

package dev.longspan.cli;

import dev.longspan.format.LongspanFormat;
import dev.longspan.model.ModelConfig;
import dev.longspan.model.Transformer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.knowm.xchart.XYChart;

import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** What the commands print and draw: tables in order, well-formed numbers, readable charts. */
class OutputFormatTest {
    @TempDir
    Path dir;

    @Test
    void trainProgressNumbersAreWellFormedAndSeparated() {
        assertThat(TrainCommand.speedFormat().format(0.5)).isEqualTo("0.5");
        assertThat(TrainCommand.speedFormat().format(12.34)).isEqualTo("12.3");
        // the bar prints "<speed>/s" and this message right after it
        assertThat("0.5/s" + TrainCommand.progressMessage(5.54901, 12345.6)).isEqualTo("0.5/s loss 5.549  12,346 tok/s");
    }

    @Test
    void demoPrintsItsTablesWithHeadersInTheOrderTheWorkRan() {
        ModelConfig c = new ModelConfig(259, 16, 2, 2, 2, 8, 32, 1e-5f, true, "kind=rope,base=10000",
                List.of("window:size=16", "dense"), "byte", 64);
        Transformer m = new Transformer(c);
        m.initialize(1);
        Path model = dir.resolve("model");
        LongspanFormat.save(model, m);
        CliRun r = CliRun.of("demo", "--model", model.toString(), "--lengths", "300", "--attention-length", "256", "--dense-lengths", "300,400",
                "--out", dir.resolve("out").toString());
        assertThat(r.exit()).as(r.err()).isZero();
        String out = r.out();
        int passkeyHeader = out.indexOf("passkey accuracy by needle depth"), passkeyRow = out.indexOf("\n300 ");
        int attentionHeader = out.indexOf("attention kinds at N=256"), denseRow = out.indexOf("\ndense ");
        assertThat(passkeyHeader).as(out).isNotNegative();
        assertThat(passkeyRow).as(out).isGreaterThan(passkeyHeader);
        assertThat(attentionHeader).as(out).isGreaterThan(passkeyRow);
        assertThat(denseRow).as(out).isGreaterThan(attentionHeader);
        assertThat(r.err()).doesNotContain("attention kinds at");
    }

    @Test
    void perplexityChartLabelsPowersOfTwoAndPadsAroundEveryPoint() {
        assertThat(Plots.powerOfTwoLabel(8)).isEqualTo("256");
        assertThat(Plots.powerOfTwoLabel(10)).isEqualTo("1K");
        assertThat(Plots.powerOfTwoLabel(20)).isEqualTo("1M");
        assertThat(Plots.powerOfTwoLabel(10.5)).isEmpty();
        int[] lengths = {256, 1024, 4096, 65536};
        double[] ppl = {6.82, 7.2, 7.6, 8.95};
        XYChart chart = Plots.perplexityCurve(lengths, ppl, "dense", 128);
        var st = chart.getStyler();
        assertThat(st.getXAxisMin()).isLessThan(8).isEqualTo(Math.floor(st.getXAxisMin()));
        assertThat(st.getXAxisMax()).isGreaterThan(16).isEqualTo(Math.floor(st.getXAxisMax()));
        assertThat(st.getYAxisMin()).isLessThan(6.82);
        assertThat(st.getYAxisMax()).isGreaterThan(8.95);
        assertThat(chart.getSeriesMap()).containsOnlyKeys("dense");
    }

    @Test
    void planLabelNamesEveryLayerRun() {
        assertThat(Plots.planLabel(List.of("window:size=64", "dense"))).isEqualTo("layer 0 window:size=64, layer 1 dense");
        assertThat(Plots.planLabel(List.of("dense", "dense", "dense"))).isEqualTo("dense (all 3 layers)");
        assertThat(Plots.planLabel(List.of("dense"))).isEqualTo("dense");
        assertThat(Plots.planLabel(List.of("a", "a", "b", "a"))).isEqualTo("layers 0-1 a, layer 2 b, layer 3 a");
    }

    @Test
    void theModelConfigsLognIsUsedUnlessOverridden() throws Exception {
        ModelConfig c = new ModelConfig(259, 16, 1, 2, 2, 8, 32, 1e-5f, true, "kind=rope,base=10000",
                List.of("dense"), "byte", 64, false, false, 512);
        Transformer m = new Transformer(c);
        m.initialize(1);
        Path model = dir.resolve("model");
        LongspanFormat.save(model, m);
        var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
        for (String[] extra : new String[][]{{}, {"--logn", "0"}, {"--logn", "2048"}}) {
            List<String> args = new java.util.ArrayList<>(List.of("passkey", "--model", model.toString(), "--lengths", "300", "--depths", "0.5",
                    "--out", dir.resolve("out").toString(), "--json"));
            args.addAll(List.of(extra));
            CliRun r = CliRun.of(args.toArray(String[]::new));
            assertThat(r.exit()).as(r.err()).isZero();
            int expected = extra.length == 0 ? 512 : Integer.parseInt(extra[1]);
            assertThat(mapper.readTree(r.out()).get("logn").asInt()).isEqualTo(expected);
        }
    }
}

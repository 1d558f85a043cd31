package dev.longspan.cli;

import dev.longspan.io.AtomicFiles;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/** Charts written as PNG (atomically). */
final class Plots {
    private Plots() {}

    static void lossCurve(Path png, List<Map<String, Object>> metrics) {
        XYChart chart = new XYChartBuilder().width(800).height(500).title("Training loss").xAxisTitle("step").yAxisTitle("loss (nats/token)").build();
        double[] xs = metrics.stream().mapToDouble(m -> ((Number) m.get("step")).doubleValue()).toArray();
        double[] ys = metrics.stream().mapToDouble(m -> ((Number) m.get("loss")).doubleValue()).toArray();
        if (xs.length == 0) return;
        chart.addSeries("train", xs, ys).setMarker(org.knowm.xchart.style.markers.SeriesMarkers.NONE);
        List<Map<String, Object>> ev = metrics.stream().filter(m -> m.get("eval_loss") instanceof Number).toList();
        if (!ev.isEmpty()) {
            chart.addSeries("held-out", ev.stream().mapToDouble(m -> ((Number) m.get("step")).doubleValue()).toArray(),
                    ev.stream().mapToDouble(m -> ((Number) m.get("eval_loss")).doubleValue()).toArray());
        }
        write(png, chart);
    }

    /**
     * Perplexity against context length: x is log2 of the length on a linear axis, so the scale
     * is logarithmic and every tick is a power of two (labelled 256, 1K, 4K, ...); both axes are
     * padded so that no point sits on the frame; the legend names the model's whole plan.
     */
    static XYChart perplexityCurve(int[] lengths, double[] perplexity, String series, int tail) {
        XYChart chart = new XYChartBuilder().width(700).height(450).title("Perplexity vs context length")
                .xAxisTitle("context length (tokens, log scale)").yAxisTitle("perplexity of the last " + tail + " tokens").build();
        double[] xs = new double[lengths.length];
        for (int i = 0; i < xs.length; i++) xs[i] = Math.log(lengths[i]) / Math.log(2);
        double xMin = Arrays.stream(xs).min().orElse(0), xMax = Arrays.stream(xs).max().orElse(1);
        double yMin = Arrays.stream(perplexity).min().orElse(0), yMax = Arrays.stream(perplexity).max().orElse(1);
        double yPad = Math.max(0.08 * (yMax - yMin), 0.02 * Math.abs(yMax) + 1e-3);
        var st = chart.getStyler();
        st.setXAxisMin(Math.floor(xMin - 0.5)).setXAxisMax(Math.ceil(xMax + 0.5));
        st.setYAxisMin(yMin - yPad).setYAxisMax(yMax + yPad).setYAxisDecimalPattern("#,##0.0#");
        st.setLegendPosition(Styler.LegendPosition.OutsideS);
        chart.setCustomXAxisTickLabelsFormatter(Plots::powerOfTwoLabel);
        chart.addSeries(series, xs, perplexity);
        return chart;
    }

    /** A tick at log2 = k is labelled 2^k as a length (1K, 64K, 1M); ticks between powers of two stay blank. */
    static String powerOfTwoLabel(double log2) {
        long k = Math.round(log2);
        if (Math.abs(log2 - k) > 1e-9 || k < 0 || k > 30) return "";
        return Sizes.format(1 << k);
    }

    /**
     * The model's attention plan in one line: "dense" when every layer shares a pattern, else
     * each run of layers with its pattern ("layer 0 window:size=64, layer 1 dense").
     */
    static String planLabel(List<String> perLayer) {
        if (perLayer.stream().distinct().count() == 1) return perLayer.getFirst() + (perLayer.size() > 1 ? " (all " + perLayer.size() + " layers)" : "");
        StringBuilder sb = new StringBuilder();
        for (int from = 0; from < perLayer.size(); ) {
            int to = from;
            while (to + 1 < perLayer.size() && perLayer.get(to + 1).equals(perLayer.get(from))) to++;
            if (!sb.isEmpty()) sb.append(", ");
            sb.append(from == to ? "layer " + from : "layers " + from + "-" + to).append(' ').append(perLayer.get(from));
            from = to + 1;
        }
        return sb.toString();
    }

    static void write(Path png, org.knowm.xchart.internal.chartpart.Chart<?, ?> chart) {
        AtomicFiles.write(png, out -> BitmapEncoder.saveBitmap(chart, out, BitmapEncoder.BitmapFormat.PNG));
    }
}

package dev.longspan.cli;

import dev.longspan.io.AtomicFiles;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;

import java.nio.file.Path;
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

    static void write(Path png, org.knowm.xchart.internal.chartpart.Chart<?, ?> chart) {
        AtomicFiles.write(png, out -> BitmapEncoder.saveBitmap(chart, out, BitmapEncoder.BitmapFormat.PNG));
    }
}

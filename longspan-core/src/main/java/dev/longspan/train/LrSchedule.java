package dev.longspan.train;

/** Linear warm-up to the peak rate, then cosine decay to the minimum rate at the last step. */
public record LrSchedule(double peak, double min, int warmup, int total) {
    /** Learning rate at a 0-based step. */
    public double at(long step) {
        if (warmup > 0 && step < warmup) return peak * (step + 1) / warmup;
        if (step >= total) return min;
        double progress = (double) (step - warmup) / Math.max(1, total - warmup);
        return min + 0.5 * (peak - min) * (1 + Math.cos(Math.PI * progress));
    }
}

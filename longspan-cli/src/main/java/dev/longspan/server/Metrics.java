package dev.longspan.server;

import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.DoubleAdder;
import java.util.function.LongSupplier;

/** The server's counters, written in Prometheus' text format at GET /metrics. */
final class Metrics {
    private final Map<String, AtomicLong> requests = new TreeMap<>();
    private final AtomicLong promptTokens = new AtomicLong(), cachedTokens = new AtomicLong(), completionTokens = new AtomicLong();
    private final DoubleAdder prefillSeconds = new DoubleAdder(), decodeSeconds = new DoubleAdder();
    private volatile double lastPrefillRate, lastDecodeRate;
    LongSupplier queued = () -> 0, running = () -> 0, kvBytes = () -> 0;

    /** One answered request: its endpoint and HTTP status. */
    void request(String endpoint, int status) {
        AtomicLong c;
        synchronized (requests) {
            c = requests.computeIfAbsent("endpoint=\"" + endpoint + "\",status=\"" + status + "\"", k -> new AtomicLong());
        }
        c.incrementAndGet();
    }

    /** One generation: prompt tokens (cached of them reused), completion tokens, prefill and decode seconds. */
    void generated(int prompt, int cached, int completion, double prefill, double decode) {
        promptTokens.addAndGet(prompt);
        cachedTokens.addAndGet(cached);
        completionTokens.addAndGet(completion);
        prefillSeconds.add(prefill);
        decodeSeconds.add(decode);
        if (prefill > 0) lastPrefillRate = (prompt - cached) / prefill;
        if (decode > 0 && completion > 1) lastDecodeRate = (completion - 1) / decode;
    }

    String prometheus() {
        StringBuilder b = new StringBuilder();
        b.append("# HELP longspan_requests_total Requests answered, by endpoint and HTTP status.\n# TYPE longspan_requests_total counter\n");
        synchronized (requests) {
            for (var e : requests.entrySet()) b.append("longspan_requests_total{").append(e.getKey()).append("} ").append(e.getValue().get()).append('\n');
        }
        counter(b, "longspan_prompt_tokens_total", "Prompt tokens of finished generations.", promptTokens.get());
        counter(b, "longspan_prompt_tokens_cached_total", "Prompt tokens taken from a cached prefix instead of prefilled.", cachedTokens.get());
        counter(b, "longspan_completion_tokens_total", "Tokens generated.", completionTokens.get());
        counter(b, "longspan_prefill_seconds_total", "Seconds spent prefilling prompts.", prefillSeconds.sum());
        counter(b, "longspan_decode_seconds_total", "Seconds spent generating after the prompt.", decodeSeconds.sum());
        gauge(b, "longspan_prefill_tokens_per_second", "Prefill rate of the last generation (new prompt tokens).", lastPrefillRate);
        gauge(b, "longspan_decode_tokens_per_second", "Decode rate of the last generation.", lastDecodeRate);
        gauge(b, "longspan_queue_length", "Requests waiting for a slot.", queued.getAsLong());
        gauge(b, "longspan_requests_running", "Requests generating now.", running.getAsLong());
        gauge(b, "longspan_kv_cache_bytes", "Bytes of KV caches held (in use and kept for prefix reuse).", kvBytes.getAsLong());
        gauge(b, "longspan_jvm_heap_used_bytes", "Java heap in use now.", heapNow());
        return b.toString();
    }

    private static long heapNow() {
        return java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    private static void counter(StringBuilder b, String name, String help, double v) {
        b.append("# HELP ").append(name).append(' ').append(help).append("\n# TYPE ").append(name).append(" counter\n").append(name).append(' ').append(num(v)).append('\n');
    }

    private static void gauge(StringBuilder b, String name, String help, double v) {
        b.append("# HELP ").append(name).append(' ').append(help).append("\n# TYPE ").append(name).append(" gauge\n").append(name).append(' ').append(num(v)).append('\n');
    }

    private static String num(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : String.format(Locale.ROOT, "%.6g", v);
    }
}

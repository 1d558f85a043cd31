// Load and prefix-reuse measurements of a running `longspan serve` (loopback only), as a JDK
// single-file program: java scripts/ServeLoad.java load --url http://127.0.0.1:8080 --clients 16 --seconds 60 --pid PID
//                     java scripts/ServeLoad.java longdoc --url http://127.0.0.1:8080 --doc FILE --chars N
// load: each client sends completion requests back to back for the given time (bounded), then
// requests/s, latency p50/p99/max, errors, and the server's resident memory (from /proc/PID)
// at the start and the end. longdoc: one question about the first N characters of a file, then a
// second one: the times, and how many prompt tokens the second took from the cache.
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

public class ServeLoad {
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    public static void main(String[] args) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 1; i + 1 < args.length; i += 2) a.put(args[i], args[i + 1]);
        String url = a.getOrDefault("--url", "http://127.0.0.1:8080");
        if (!URI.create(url).getHost().matches("127\\.\\d+\\.\\d+\\.\\d+|localhost|\\[::1\\]")) throw new IllegalArgumentException("loopback only: " + url);
        switch (args.length == 0 ? "" : args[0]) {
            case "load" -> load(url, Integer.parseInt(a.getOrDefault("--clients", "16")), Integer.parseInt(a.getOrDefault("--seconds", "60")),
                    a.get("--pid"), Integer.parseInt(a.getOrDefault("--max-tokens", "32")), a.getOrDefault("--model", "stories260K"));
            case "longdoc" -> longdoc(url, Path.of(a.get("--doc")), Integer.parseInt(a.get("--chars")), a.getOrDefault("--model", "longspan-passkey"));
            default -> throw new IllegalArgumentException("usage: load|longdoc --url URL ...");
        }
    }

    static HttpResponse<String> complete(String url, String body, Duration timeout) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(url + "/v1/completions")).timeout(timeout)
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    static String str(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    static long rssKb(String pid) throws Exception {
        if (pid == null) return -1;
        for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) if (l.startsWith("VmRSS:")) return Long.parseLong(l.replaceAll("\\D", ""));
        return -1;
    }

    static void load(String url, int clients, int seconds, String pid, int maxTokens, String model) throws Exception {
        String[] prompts = {"Once upon a time", "Tom had a dog.", "The sun was", "One day, Lily", "The cat", "A big tree", "Sam and Amy", "It was a rainy day"};
        long rss0 = rssKb(pid);
        String heap0 = liveHeap(url, pid);
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        List<Long> lat = Collections.synchronizedList(new ArrayList<>());
        AtomicLong errors = new AtomicLong(), tokens = new AtomicLong();
        List<Thread> ts = new ArrayList<>();
        long t0 = System.nanoTime();
        for (int c = 0; c < clients; c++) {
            int id = c;
            ts.add(Thread.ofPlatform().start(() -> {
                long seed = id * 1000L;
                while (System.nanoTime() < end) {
                    String body = "{\"model\":\"" + model + "\",\"prompt\":" + str(prompts[(int) (seed % prompts.length)]) + ",\"max_tokens\":" + maxTokens
                            + ",\"temperature\":0.8,\"seed\":" + seed++ + "}";
                    long s = System.nanoTime();
                    try {
                        HttpResponse<String> r = complete(url, body, Duration.ofSeconds(120));
                        if (r.statusCode() != 200) { errors.incrementAndGet(); System.err.println(r.statusCode() + " " + r.body()); continue; }
                        lat.add(System.nanoTime() - s);
                        int i = r.body().indexOf("\"completion_tokens\":");
                        tokens.addAndGet(Long.parseLong(r.body().substring(i + 20).replaceAll("^(\\d+).*", "$1")));
                    } catch (Exception e) {
                        errors.incrementAndGet();
                        System.err.println(e);
                    }
                }
            }));
        }
        for (Thread t : ts) t.join();
        double wall = (System.nanoTime() - t0) / 1e9;
        long rss1 = rssKb(pid);
        List<Long> l = new ArrayList<>(lat);
        Collections.sort(l);
        System.out.printf("clients %d, %.1f s: %d requests (%.1f/s), %d completion tokens (%.0f/s), errors %d%n", clients, wall, l.size(), l.size() / wall,
                tokens.get(), tokens.get() / wall, errors.get());
        if (!l.isEmpty()) System.out.printf("latency ms: p50 %.1f, p99 %.1f, max %.1f%n", pct(l, 0.50), pct(l, 0.99), l.getLast() / 1e6);
        if (pid != null) System.out.printf("server RSS: start %d MiB, end %d MiB%n", rss0 / 1024, rss1 / 1024);
        System.out.printf("server live heap (after a full GC): start %s, end %s%n", heap0, liveHeap(url, pid));
    }

    // the heap still reachable: a full collection in the server (jcmd, beside this JDK's java), then its gauge
    static String liveHeap(String url, String pid) throws Exception {
        if (pid == null) return "?";
        Path jcmd = Path.of(ProcessHandle.current().info().command().orElseThrow()).resolveSibling("jcmd");
        new ProcessBuilder(jcmd.toString(), pid, "GC.run").redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor();
        String m = HTTP.send(HttpRequest.newBuilder(URI.create(url + "/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
        for (String l : m.split("\n")) if (l.startsWith("longspan_jvm_heap_used_bytes ")) return (long) Double.parseDouble(l.substring(l.indexOf(' ') + 1)) / (1 << 20) + " MiB";
        return "?";
    }

    static double pct(List<Long> sorted, double p) {
        return sorted.get(Math.min(sorted.size() - 1, (int) Math.ceil(p * sorted.size()) - 1)) / 1e6;
    }

    static void longdoc(String url, Path doc, int chars, String model) throws Exception {
        String text = Files.readString(doc);
        text = text.substring(0, Math.min(chars, text.length()));
        String[] questions = {"\nQuestion: which book comes first?\nAnswer:", "\nQuestion: who is the first man named?\nAnswer:"};
        for (int i = 0; i < questions.length; i++) {
            String body = "{\"model\":\"" + model + "\",\"prompt\":" + str(text + questions[i]) + ",\"max_tokens\":16,\"temperature\":0}";
            long s = System.nanoTime();
            HttpResponse<String> r = complete(url, body, Duration.ofMinutes(60));
            double sec = (System.nanoTime() - s) / 1e9;
            String u = r.body().replaceAll("(?s).*\"usage\":(\\{.*?\\}\\}).*", "$1");
            System.out.printf("question %d: HTTP %d in %.2f s, usage %s%n", i + 1, r.statusCode(), sec, u);
        }
    }
}

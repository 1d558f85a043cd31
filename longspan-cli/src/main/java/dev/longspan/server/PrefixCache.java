package dev.longspan.server;

import dev.longspan.io.AtomicFiles;
import dev.longspan.model.InferenceSession;
import dev.longspan.util.Log;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.function.Supplier;

/**
 * Sessions kept between requests with the tokens they were fed, so that a request sharing a
 * prefix with an earlier one prefills only what follows it. Idle sessions are kept within a byte
 * budget, least recently used evicted; with a directory, prefilled prompts are also written there
 * and found again after a restart. A session in use belongs to its request alone.
 */
final class PrefixCache {
    /** A session for one request: its first {@code reused} positions are the prompt's. */
    record Lease(InferenceSession session, int reused, boolean fromDisk) {}

    private record Idle(InferenceSession session, int[] tokens, long lastUsed) {}

    private record Stored(Path file, int[] tokens) {}

    private static final int FILE_MAGIC = 0x4c535058;   // "LSPX"

    private final Supplier<InferenceSession> fresh;
    private final long budget;
    private final Path dir;
    private final String fingerprint;
    private final List<Idle> idle = new ArrayList<>();
    private final List<Stored> stored = new ArrayList<>();
    private long clock;
    private long sessionBytes = -1;

    /** fingerprint: names the model and session shape; files of another are ignored. */
    PrefixCache(Supplier<InferenceSession> fresh, long budgetBytes, Path dir, String fingerprint) {
        this.fresh = fresh;
        this.budget = budgetBytes;
        this.dir = dir;
        this.fingerprint = fingerprint;
        if (dir != null) scan();
    }

    /**
     * The session sharing the longest prefix with prompt, rewound to it (at most prompt.length − 1
     * positions, so that the last prompt token is fed and gives the first logits), else a fresh one.
     */
    Lease take(int[] prompt) {
        int limit = prompt.length - 1;
        Idle best = null;
        int bestLen = 0;
        Stored disk = null;
        synchronized (this) {
            for (Idle e : idle) {
                int k = Math.min(common(e.tokens, prompt), limit);
                if (best == null || k > bestLen || (k == bestLen && e.lastUsed > best.lastUsed)) { best = e; bestLen = k; }
            }
            // a stored prefix is read whole, then cut back to what it shares with the prompt
            for (Stored s : stored) {
                int k = Math.min(common(s.tokens, prompt), limit);
                if (k > bestLen) { disk = s; bestLen = k; }
            }
            if (disk != null) best = idle.isEmpty() ? null : oldest();
            if (best != null) idle.remove(best);
        }
        if (disk != null) {
            InferenceSession s = best != null && best.session.rewind(0) ? best.session : fresh.get();
            if (load(disk, s) && s.rewind(bestLen)) return new Lease(s, bestLen, true);
            return new Lease(s.length() == 0 || s.rewind(0) ? s : fresh.get(), 0, false);
        }
        if (best != null) {
            if (best.session.rewind(bestLen)) return new Lease(best.session, bestLen, false);
            if (best.session.rewind(0)) return new Lease(best.session, 0, false);
        }
        return new Lease(fresh.get(), 0, false);
    }

    /** Takes a session back after its request: it holds tokens[0..session.length()). */
    void give(InferenceSession s, int[] tokens) {
        if (s.length() > tokens.length) throw new IllegalArgumentException("session longer than its tokens");
        synchronized (this) {
            sessionBytes = s.cacheBytes();
            idle.add(new Idle(s, Arrays.copyOf(tokens, s.length()), ++clock));
            while (!idle.isEmpty() && (long) idle.size() * sessionBytes > budget) idle.remove(oldest());
        }
    }

    /** Bytes of the KV caches kept idle. */
    synchronized long idleBytes() { return sessionBytes < 0 ? 0 : idle.size() * sessionBytes; }

    synchronized int storedPrefixes() { return stored.size(); }

    private Idle oldest() {
        Idle o = idle.getFirst();
        for (Idle e : idle) if (e.lastUsed < o.lastUsed) o = e;
        return o;
    }

    private static int common(int[] a, int[] b) {
        int n = Math.min(a.length, b.length), i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }

    /**
     * Writes the session's prefix (tokens[0..session.length())) to the directory, unless it is
     * there already; returns whether it was written. Files beyond the budget go, oldest first.
     */
    boolean persist(InferenceSession s, int[] tokens) {
        if (dir == null) return false;
        int[] prefix = Arrays.copyOf(tokens, s.length());
        Path file = dir.resolve(name(prefix));
        synchronized (this) {
            for (Stored st : stored) if (st.file.equals(file)) return false;
        }
        boolean[] ok = {true};
        try {
            AtomicFiles.write(file, out -> {
                DataOutputStream d = new DataOutputStream(out);
                d.writeInt(FILE_MAGIC);
                d.writeUTF(fingerprint);
                d.writeInt(prefix.length);
                for (int t : prefix) d.writeInt(t);
                d.flush();
                ok[0] = s.writeCache(Channels.newChannel(out));
            });
        } catch (RuntimeException e) {
            Log.warn("--kv-dir: could not write " + file + ": " + e.getMessage());
            return false;
        }
        if (!ok[0]) {
            // the session keeps state that cannot be written exactly (select-and-merge over a half-precision cache): no file
            try { Files.deleteIfExists(file); } catch (IOException ignored) { /* nothing was usable anyway */ }
            return false;
        }
        synchronized (this) {
            stored.add(new Stored(file, prefix));
            trimDirectory();
        }
        return true;
    }

    // the oldest files go while the directory's prefixes exceed the budget
    private void trimDirectory() {
        long total = 0;
        for (Stored s : stored) total += size(s.file);
        while (stored.size() > 1 && total > budget) {
            Stored s = stored.removeFirst();
            total -= size(s.file);
            try { Files.deleteIfExists(s.file); } catch (IOException e) { Log.warn("--kv-dir: could not delete " + s.file + ": " + e.getMessage()); }
        }
    }

    private static long size(Path p) {
        try { return Files.size(p); } catch (IOException e) { return 0; }
    }

    private boolean load(Stored st, InferenceSession s) {
        try (InputStream in = new java.io.BufferedInputStream(Files.newInputStream(st.file), 1 << 16)) {
            DataInputStream d = new DataInputStream(in);
            if (header(d) == null) return false;
            s.readCache(Channels.newChannel(in));
            return s.length() == st.tokens.length;
        } catch (IOException | RuntimeException e) {
            Log.warn("--kv-dir: could not read " + st.file + " (prefilling instead): " + e.getMessage());
            synchronized (this) { stored.remove(st); }
            return false;
        }
    }

    // the file's tokens, or null when it is of another model or no prefix file at all
    private int[] header(DataInputStream d) throws IOException {
        if (d.readInt() != FILE_MAGIC) return null;
        if (!d.readUTF().equals(fingerprint)) return null;
        int n = d.readInt();
        if (n < 0 || n > 1 << 28) return null;
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = d.readInt();
        return t;
    }

    private void scan() {
        if (!Files.isDirectory(dir)) return;
        try (var files = Files.list(dir)) {
            List<Path> list = files.filter(p -> p.getFileName().toString().endsWith(".kv")).sorted((a, b) -> Long.compare(mtime(a), mtime(b))).toList();
            for (Path p : list) {
                try (DataInputStream d = new DataInputStream(new java.io.BufferedInputStream(Files.newInputStream(p)))) {
                    int[] t = header(d);
                    if (t != null) stored.add(new Stored(p, t));
                } catch (IOException e) {
                    Log.warn("--kv-dir: skipping " + p + ": " + e.getMessage());
                }
            }
        } catch (IOException e) {
            Log.warn("--kv-dir: could not list " + dir + ": " + e.getMessage());
        }
    }

    private static long mtime(Path p) {
        try { return Files.getLastModifiedTime(p).toMillis(); } catch (IOException e) { return 0; }
    }

    private String name(int[] tokens) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(fingerprint.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            for (int t : tokens) md.update(new byte[]{(byte) (t >>> 24), (byte) (t >>> 16), (byte) (t >>> 8), (byte) t});
            return HexFormat.of().formatHex(md.digest(), 0, 16) + ".kv";
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}

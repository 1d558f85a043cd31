package dev.longspan.train;

import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

/**
 * The standard passkey-retrieval prompt (LongLoRA / Landmark-attention format):
 * <pre>
 * There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there.
 * [filler] The pass key is K. Remember it. K is the pass key. [filler]
 * What is the pass key? The pass key is
 * </pre>
 * Built in bytes (Longspan's byte tokenizer: one token per byte) to an exact length, with the
 * needle at a requested depth (0 = right after the task line, 1 = right before the question).
 */
public final class PasskeyTask {
    public static final String TASK = "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there.";
    public static final String FILLER = " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
    public static final String QUESTION = " What is the pass key? The pass key is";

    /** Where filler text comes from. */
    @FunctionalInterface
    public interface Filler {
        void fill(byte[] dst, int from, int n);

        /** The repeated standard filler sentence. */
        static Filler standard() {
            byte[] f = FILLER.getBytes(StandardCharsets.US_ASCII);
            return (dst, from, n) -> {
                for (int i = 0; i < n; i++) dst[from + i] = f[i % f.length];
            };
        }

        /**
         * This filler with decoy numbers written over it: about {@code perKb} numbers per 1,000
         * bytes, each starting where a word starts, 1–6 digits long, a third of them 5 digits like a
         * key. A haystack of words alone never shows the copying head another number to tell apart
         * from the key; text the model never saw (licences, reports, dates in a novel) does.
         */
        default Filler withNumbers(SplittableRandom rnd, double perKb) {
            Filler base = this;
            return (dst, from, n) -> {
                base.fill(dst, from, n);
                atWordStarts(rnd, dst, from, n, perKb, false, (at, end) -> {
                    int digits = rnd.nextInt(3) == 0 ? 5 : 1 + rnd.nextInt(6);
                    for (int d = 0; d < digits && at < end; d++, at++) dst[at] = (byte) ('0' + rnd.nextInt(10));
                });
            };
        }

        /**
         * This filler with the numbers technical text is full of written over it: about {@code perKb}
         * snippets per 1,000 bytes, each where a word starts — section references ({@code |02.3|},
         * {@code 12.4}), versions ({@code 3.13.0}), dates ({@code 2022 Jun 03}, {@code 2024-10-15}),
         * times ({@code 10:45:07}), issue numbers ({@code gh-120083}, {@code #4512}), counts with
         * units ({@code 78 lines}), commands with counts ({@code :set tw=78}, {@code 5dd}) and
         * tab-separated rows of numbers. {@link #withNumbers}' decoys are random digits in random
         * places; manuals and release notes put numbers in these shapes, often the same one many times,
         * and among them the bundled model miscopied keys (docs/MODEL.md, "Known weakness").
         */
        default Filler withTechnical(SplittableRandom rnd, double perKb) {
            return withSnippets(rnd, perKb, PasskeyTask::technicalSnippet);
        }

        /**
         * This filler with about {@code perKb} marks per 1,000 bytes: a few digits fenced by the
         * punctuation and whitespace of manuals — {@code *02.2*⇥}, {@code |12|}, {@code 3*⇥},
         * {@code =05=}, {@code (7)⇥}, {@code ~21~} — written where words start. The bundled model's
         * copy head (layer 1, head 3) took such a mark's tab for the key's third digit
         * (docs/MODEL.md, "Known weakness"); prose haystacks never show it one.
         */
        default Filler withMarks(SplittableRandom rnd, double perKb) {
            return withSnippets(rnd, perKb, PasskeyTask::markSnippet);
        }

        /**
         * This filler with tables of numbers written over about {@code share} of it: blocks of 80 to
         * 1,500 bytes (fewer where the share wants fewer) of indented, space-aligned columns (counts,
         * sizes with units, negative flags, decimals, times, five-digit numbers like a key, a few
         * words; now and then a header line), the shape of a program's output or a manual's table,
         * where about a third of the bytes are digits. Half the time the first block starts or ends the stretch, so the needle often
         * sits right beside a table. The bundled model copied a key wrong when a table stood just
         * before the needle ("1350k      845160" then "The pass key is 38262": 38260) and read only 12 of
         * 45 keys in a haystack of such tables (docs/MODEL.md, stage 39): the decoys, snippets and
         * marks above are a few numbers among words, never a stretch of digits.
         */
        default Filler withTables(SplittableRandom rnd, double share) {
            Filler base = this;
            return (dst, from, n) -> {
                base.fill(dst, from, n);
                long want = Math.round(n * share);
                boolean first = true;
                for (long covered = 0; covered < want; first = false) {
                    // at most what the share still wants (16 bytes at least), so that a short stretch is not all table
                    int len = (int) Math.min(Math.min(n, 80 + rnd.nextInt(1421)), Math.max(16, want - covered));
                    int at = first && rnd.nextBoolean() ? (rnd.nextBoolean() ? 0 : n - len) : rnd.nextInt(n - len + 1);
                    writeTable(rnd, dst, from + at, len);
                    covered += len;
                }
            };
        }

        // about perKb snippets per 1,000 bytes written where words start (after a space or a newline)
        private Filler withSnippets(SplittableRandom rnd, double perKb, java.util.function.Function<SplittableRandom, String> snippet) {
            Filler base = this;
            return (dst, from, n) -> {
                base.fill(dst, from, n);
                atWordStarts(rnd, dst, from, n, perKb, true, (at, end) -> {
                    byte[] b = snippet.apply(rnd).getBytes(StandardCharsets.US_ASCII);
                    for (int i = 0; i < b.length && at < end; i++, at++) dst[at] = b[i];
                });
            };
        }
    }

    /** Writes one thing over the haystack at {@code at}, stopping at {@code end}. */
    @FunctionalInterface
    private interface WordWriter {
        void write(int at, int end);
    }

    /**
     * About perKb things per 1,000 bytes written over dst[from, from+n): each at a random place
     * moved on to the next word start (after a space, or also a newline). The draws' order (place,
     * then what write draws) is the one the recipes' decoys were trained with.
     */
    private static void atWordStarts(SplittableRandom rnd, byte[] dst, int from, int n, double perKb, boolean afterNewline, WordWriter write) {
        int count = (int) Math.round(n * perKb / 1000.0);
        for (int c = 0; c < count; c++) {
            int at = from + rnd.nextInt(Math.max(1, n));
            while (at < from + n && at > from && dst[at - 1] != ' ' && !(afterNewline && dst[at - 1] == '\n')) at++;
            write.write(at, from + n);
        }
    }

    private static final String[] MONTHS = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    private static final String[] UNITS = {"lines", "MB", "KB", "bytes", "ms", "columns", "times", "%", "x", "files"};

    private static final String FENCES = "*|=~#<>[]()_-+:";
    private static final String[] AFTER = {"\t", "\t", " ", "\n", "\t\t", ""};

    private static final String[] TABLE_HEADERS = {"  PID TTY          TIME CMD", "Filesystem     1K-blocks    Used Available Use% Mounted on",
            "               total        used        free      shared  buff/cache   available", "USER       PID %CPU %MEM    VSZ   RSS STAT START   TIME",
            "  Offset    Size   Count  Flags", "The values below are in kilobytes.", "Summary:", "     r  b   swpd   free   buff  cache   si   so"};
    private static final String[] TABLE_WORDS = {"root", "tty1", "S", "Ss", "R+", "kB", "yes", "no", "none", "/dev/sda1", "eth0", "ok", "-", "*"};
    private static final String[] SIZE_UNITS = {"k", "K", "M", "G", "%", "B", "kB"};

    /** Lines of {@link #tableLine}s written over dst[at, at+len), the last one cut at len. */
    static void writeTable(SplittableRandom rnd, byte[] dst, int at, int len) {
        StringBuilder b = new StringBuilder();
        while (b.length() < len) b.append(tableLine(rnd)).append('\n');
        for (int i = 0; i < len; i++) dst[at + i] = (byte) b.charAt(i);
    }

    /** One line of a table of {@link Filler#withTables}: an indent, 2-6 cells apart by runs of spaces; sometimes a header. */
    static String tableLine(SplittableRandom rnd) {
        if (rnd.nextInt(8) == 0) return TABLE_HEADERS[rnd.nextInt(TABLE_HEADERS.length)];
        StringBuilder b = new StringBuilder(" ".repeat(rnd.nextInt(13)));
        int cells = 2 + rnd.nextInt(5);
        for (int c = 0; c < cells; c++) {
            if (c > 0) b.append(" ".repeat(1 + rnd.nextInt(8)));
            b.append(switch (rnd.nextInt(9)) {
                case 0 -> Integer.toString(rnd.nextInt(100));
                case 1 -> Integer.toString(100 + rnd.nextInt(999_900));
                case 2 -> (1 + rnd.nextInt(99_999)) + SIZE_UNITS[rnd.nextInt(SIZE_UNITS.length)];
                case 3 -> "-" + (1 + rnd.nextInt(9));
                case 4 -> rnd.nextInt(1000) + "." + rnd.nextInt(100);
                case 5 -> String.format(java.util.Locale.ROOT, "%d:%02d", rnd.nextInt(24), rnd.nextInt(60));
                case 6, 7 -> Integer.toString(10_000 + rnd.nextInt(90_000));
                default -> TABLE_WORDS[rnd.nextInt(TABLE_WORDS.length)];
            });
        }
        return b.toString();
    }

    /** A mark of {@link Filler#withMarks}: 1–4 digits (sometimes with a dot), fenced, then whitespace. */
    static String markSnippet(SplittableRandom rnd) {
        StringBuilder b = new StringBuilder();
        char open = FENCES.charAt(rnd.nextInt(FENCES.length()));
        char close = rnd.nextInt(3) == 0 ? FENCES.charAt(rnd.nextInt(FENCES.length())) : open;
        if (rnd.nextInt(4) != 0) b.append(open);
        int digits = 1 + rnd.nextInt(4);
        for (int i = 0; i < digits; i++) {
            b.append((char) ('0' + rnd.nextInt(10)));
            if (i == 1 && digits > 2 && rnd.nextBoolean()) b.append('.');
        }
        b.append(close);
        b.append(AFTER[rnd.nextInt(AFTER.length)]);
        return b.toString();
    }

    /** One number in a shape technical text uses ({@link Filler#withTechnical}). */
    static String technicalSnippet(SplittableRandom rnd) {
        int a = rnd.nextInt(100), b = rnd.nextInt(10), y = 1990 + rnd.nextInt(40);
        return switch (rnd.nextInt(10)) {
            case 0 -> rnd.nextBoolean() ? String.format(java.util.Locale.ROOT, "|%02d.%d| ", a % 50, b) : String.format(java.util.Locale.ROOT, "%02d.%d ", a % 50, b);
            case 1 -> rnd.nextBoolean() ? a % 10 + "." + b + " " : "v" + a % 10 + "." + rnd.nextInt(40) + "." + rnd.nextInt(20) + " ";
            case 2 -> rnd.nextBoolean() ? y + " " + MONTHS[rnd.nextInt(12)] + String.format(java.util.Locale.ROOT, " %02d ", 1 + rnd.nextInt(28))
                    : String.format(java.util.Locale.ROOT, "%d-%02d-%02d ", y, 1 + rnd.nextInt(12), 1 + rnd.nextInt(28));
            case 3 -> String.format(java.util.Locale.ROOT, "%02d:%02d%s ", rnd.nextInt(24), rnd.nextInt(60), rnd.nextBoolean() ? String.format(java.util.Locale.ROOT, ":%02d", rnd.nextInt(60)) : "");
            case 4 -> switch (rnd.nextInt(3)) {
                case 0 -> "gh-" + (10000 + rnd.nextInt(190000)) + ": ";
                case 1 -> "bpo-" + (1000 + rnd.nextInt(49000)) + " ";
                default -> "#" + (1 + rnd.nextInt(99999)) + " ";
            };
            case 5 -> (1 + rnd.nextInt(rnd.nextBoolean() ? 100 : 100000)) + " " + UNITS[rnd.nextInt(UNITS.length)] + " ";
            case 6 -> rnd.nextBoolean() ? ":set tw=" + (40 + rnd.nextInt(80)) + " " : (1 + rnd.nextInt(20)) + "dd ";
            case 7 -> "\t" + rnd.nextInt(1000) + "\t" + rnd.nextInt(100000) + "\t" + rnd.nextInt(100) + "\n";
            case 8 -> "line " + (1 + rnd.nextInt(5000)) + ", col " + (1 + rnd.nextInt(120)) + " ";
            default -> "\t\t";
        };
    }

    /** A built prompt: bytes of the prompt, the answer bytes, and where the needle sits. */
    public record Prompt(byte[] prompt, byte[] answer, int needleAt) {}

    public static String needle(String key) {
        return " The pass key is " + key + ". Remember it. " + key + " is the pass key.";
    }

    /**
     * Builds a prompt of exactly {@code length} bytes (the answer excluded), the needle at
     * {@code depth} of the filler. Length must leave room for task, needle and question.
     */
    public static Prompt build(String key, int length, double depth, Filler filler) {
        byte[] task = TASK.getBytes(StandardCharsets.US_ASCII);
        byte[] nd = needle(key).getBytes(StandardCharsets.US_ASCII);
        byte[] q = QUESTION.getBytes(StandardCharsets.US_ASCII);
        int fillerLen = length - task.length - nd.length - q.length;
        if (fillerLen < 0) {
            throw new dev.longspan.util.LongspanException("passkey prompt length " + length + " is too short (minimum " + minimumLength(key) + ")");
        }
        int before = (int) Math.round(Math.max(0, Math.min(1, depth)) * fillerLen);
        byte[] p = new byte[length];
        int o = 0;
        System.arraycopy(task, 0, p, o, task.length); o += task.length;
        filler.fill(p, o, before); o += before;
        int needleAt = o;
        System.arraycopy(nd, 0, p, o, nd.length); o += nd.length;
        filler.fill(p, o, fillerLen - before); o += fillerLen - before;
        System.arraycopy(q, 0, p, o, q.length);
        return new Prompt(p, (" " + key).getBytes(StandardCharsets.US_ASCII), needleAt);
    }

    // count copies of the key with one digit changed, at word starts of the haystack (the task line,
    // the needle and the question left alone)
    private static void writeNearMisses(SplittableRandom rnd, Prompt p, String key, int count) {
        byte[] b = p.prompt();
        int lo = TASK.length(), hi = b.length - QUESTION.length() - key.length() - 1;
        int needleFrom = p.needleAt() - key.length() - 1, needleTo = p.needleAt() + needle(key).length();
        if (hi <= lo) return;
        for (int c = 0; c < count; c++) {
            int at = lo + rnd.nextInt(hi - lo);
            while (at < hi && b[at - 1] != ' ') at++;
            byte[] miss = key.getBytes(StandardCharsets.US_ASCII);
            int pos = rnd.nextInt(miss.length);
            miss[pos] = (byte) ('0' + (miss[pos] - '0' + 1 + rnd.nextInt(9)) % 10);
            if (at >= hi || (at + miss.length > needleFrom && at < needleTo)) continue;
            System.arraycopy(miss, 0, b, at, miss.length);
        }
    }

    public static int minimumLength(String key) {
        return TASK.length() + needle(key).length() + QUESTION.length();
    }

    /** A random pass key of 5 digits (the usual evaluation range 1..50000 widened to 5 digits). */
    public static String randomKey(SplittableRandom rnd) {
        return Integer.toString(10000 + rnd.nextInt(90000));
    }

    /**
     * A training sample of exactly n+1 tokens: the prompt followed by the answer; targets count
     * only the answer bytes (and the final '.'), so the model learns retrieval, not filler.
     */
    public static void trainingSample(SplittableRandom rnd, int n, Filler filler, int[] tokens, int[] targets) {
        trainingSample(rnd, n, filler, 0, tokens, targets);
    }

    /**
     * {@link #trainingSample(SplittableRandom, int, Filler, int[], int[])} with {@code nearMisses}
     * near misses of the key written over the haystack (outside the needle), each where a word
     * starts: the key with one digit changed. The bundled model's misses on text it never saw are
     * exactly such numbers (the key with its third digit wrong, docs/MODEL.md): a haystack that holds
     * them makes the copy tell the key from its neighbours. No draws when 0 (older recipes' samples
     * are unchanged).
     */
    public static void trainingSample(SplittableRandom rnd, int n, Filler filler, int nearMisses, int[] tokens, int[] targets) {
        String key = randomKey(rnd);
        byte[] ans = (" " + key + ".").getBytes(StandardCharsets.US_ASCII);
        int promptLen = n + 1 - ans.length;
        Prompt p = build(key, promptLen, rnd.nextDouble(), filler);
        if (nearMisses > 0) writeNearMisses(rnd, p, key, nearMisses);
        for (int i = 0; i < promptLen; i++) tokens[i] = p.prompt()[i] & 0xff;
        for (int i = 0; i < ans.length; i++) tokens[promptLen + i] = ans[i] & 0xff;
        // targets[t] predicts tokens[t+1]
        for (int t = 0; t < n; t++) targets[t] = t + 1 >= promptLen ? tokens[t + 1] : -1;
    }
}

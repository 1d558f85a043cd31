package dev.longspan.eval;

import dev.longspan.io.AtomicFiles;
import dev.longspan.io.IoErrors;
import dev.longspan.util.LongspanException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The ablations' split of the project's texts (the shared data directory): the King James Bible
 * is cut where the New Testament starts (the first line that begins with {@code Mat1:1 }):
 * Genesis–Malachi is trained on, Matthew–Revelation held out; of the novels in
 * {@code text/gutenberg/}, the named ones are held out and the others trained on. Every file is
 * kept whole apart from the Bible's one cut, so that a held-out file is one long document
 * (perplexity at 64K needs 64K tokens of one text). The split depends only on the files: the same
 * data always gives the same bytes.
 */
public final class HeldOutSplit {
    private HeldOutSplit() {}

    public static final String BIBLE = "kjv-verses.txt";
    public static final String NOVELS = "text/gutenberg";
    /** The first line of the held-out part of the Bible (Matthew 1:1). */
    public static final String FIRST_HELD_OUT_LINE = "Mat1:1 ";
    public static final String TRAIN_DIR = "train", HELD_OUT_DIR = "heldout";
    public static final String BIBLE_TRAIN = "kjv-ot.txt", BIBLE_HELD_OUT = "kjv-nt.txt";

    /** Bytes [from, to) of a source file (relative to the data directory) that become file {@code name}. */
    public record Part(String name, String source, long from, long to) {
        public long bytes() { return to - from; }
    }

    public record Split(List<Part> train, List<Part> heldOut) {}

    /** The split of {@code dataDir} holding out the named novels (file names in text/gutenberg). */
    public static Split plan(Path dataDir, List<String> heldOutNovels) {
        if (heldOutNovels.isEmpty()) throw new LongspanException("--hold-out: name at least one novel (a file in " + dataDir.resolve(NOVELS) + ")");
        byte[] bible = read(dataDir.resolve(BIBLE));
        long cut = lineStarting(bible, FIRST_HELD_OUT_LINE);
        if (cut < 0) throw new LongspanException(dataDir.resolve(BIBLE) + ": no line starts with '" + FIRST_HELD_OUT_LINE.trim() + "' (where the held-out New Testament begins)");
        if (cut == 0) throw new LongspanException(dataDir.resolve(BIBLE) + ": '" + FIRST_HELD_OUT_LINE.trim() + "' is the first line, nothing is left to train on");
        List<String> novels = novels(dataDir.resolve(NOVELS));
        for (String h : heldOutNovels) {
            if (!novels.contains(h)) throw new LongspanException("--hold-out " + h + ": not a novel in " + dataDir.resolve(NOVELS) + " (" + String.join(", ", novels) + ")");
        }
        if (heldOutNovels.containsAll(novels)) throw new LongspanException("--hold-out: every novel is held out, none is left to train on");
        List<Part> train = new ArrayList<>(), heldOut = new ArrayList<>();
        train.add(new Part(BIBLE_TRAIN, BIBLE, 0, cut));
        heldOut.add(new Part(BIBLE_HELD_OUT, BIBLE, cut, bible.length));
        for (String n : novels) {
            Part p = new Part(n, NOVELS + "/" + n, 0, size(dataDir.resolve(NOVELS).resolve(n)));
            (heldOutNovels.contains(n) ? heldOut : train).add(p);
        }
        return new Split(List.copyOf(train), List.copyOf(heldOut));
    }

    /**
     * Writes the split's files under {@code out} ({@code train/}, {@code heldout/}) and
     * {@code split.json} (every part's source and byte range). A file already there with the same
     * bytes is left alone, so the split can be made again before every run; one with other bytes
     * is refused, never overwritten.
     */
    public static Map<String, Object> write(Split split, Path dataDir, Path out) {
        List<Object> listed = new ArrayList<>();
        for (Part p : split.train()) listed.add(put(p, TRAIN_DIR, dataDir, out));
        for (Part p : split.heldOut()) listed.add(put(p, HELD_OUT_DIR, dataDir, out));
        Map<String, Object> manifest = new LinkedHashMap<>();
        manifest.put("data", dataDir.toString());
        manifest.put("bible_cut_at_line", FIRST_HELD_OUT_LINE.trim());
        manifest.put("files", listed);
        byte[] json = (dev.longspan.io.Json.writePretty(manifest) + "\n").getBytes(StandardCharsets.UTF_8);
        keep(out.resolve("split.json"), json);
        return manifest;
    }

    private static Map<String, Object> put(Part p, String dir, Path dataDir, Path out) {
        byte[] all = read(dataDir.resolve(p.source()));
        keep(out.resolve(dir).resolve(p.name()), Arrays.copyOfRange(all, (int) p.from(), (int) p.to()));
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("file", dir + "/" + p.name());
        m.put("source", p.source());
        m.put("from", p.from());
        m.put("to", p.to());
        return m;
    }

    private static void keep(Path target, byte[] bytes) {
        if (Files.exists(target)) {
            if (Arrays.equals(read(target), bytes)) return;
            throw new LongspanException(target + ": exists with other contents (not overwritten); remove it or choose another --out");
        }
        AtomicFiles.write(target, o -> o.write(bytes));
    }

    // byte offset of the first line that starts with prefix, -1 if none
    static long lineStarting(byte[] text, String prefix) {
        byte[] p = prefix.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i + p.length <= text.length; ) {
            if (Arrays.equals(text, i, i + p.length, p, 0, p.length)) return i;
            while (i < text.length && text[i] != '\n') i++;
            i++;
        }
        return -1;
    }

    private static List<String> novels(Path dir) {
        if (!Files.isDirectory(dir)) throw new LongspanException(dir + ": no such directory (the novels)");
        try (Stream<Path> s = Files.list(dir)) {
            List<String> names = s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".txt")).sorted().toList();
            if (names.isEmpty()) throw new LongspanException(dir + ": holds no .txt novels");
            return names;
        } catch (IOException e) {
            throw new LongspanException(dir + ": cannot list: " + IoErrors.reason(e));
        }
    }

    private static byte[] read(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (NoSuchFileException e) {
            throw new LongspanException(p + ": no such file");
        } catch (IOException e) {
            throw new LongspanException(p + ": cannot read: " + IoErrors.reason(e));
        }
    }

    private static long size(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            throw new LongspanException(p + ": cannot read: " + IoErrors.reason(e));
        }
    }
}

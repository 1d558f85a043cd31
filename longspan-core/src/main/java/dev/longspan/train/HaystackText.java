package dev.longspan.train;

import dev.longspan.util.LongspanException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * Real text as passkey haystacks in training ({@code train.synthetic.text_filler}): whole files
 * (a directory stands for its {@code *.txt} files), one of them held out and never read, so that
 * retrieval can be checked on text the model never saw. Each sample reads one stream from a
 * seeded offset: the haystack after the needle continues where the one before it stopped,
 * wrapping inside the file, as {@code passkey --filler} builds its prompts.
 */
public final class HaystackText {
    private final List<Path> files;
    private final byte[][] texts;
    private final long total;

    private HaystackText(List<Path> files, byte[][] texts) {
        this.files = List.copyOf(files);
        this.texts = texts;
        long t = 0;
        for (byte[] b : texts) t += b.length;
        this.total = t;
    }

    /**
     * Opens the sources (files, or directories of {@code *.txt} files in name order) without the
     * held-out file: naming it among the sources is an error, and so is a held-out file that
     * does not exist (a misspelt name would otherwise hold nothing out).
     */
    public static HaystackText open(List<Path> sources, Path heldOut, String field) {
        if (sources.isEmpty()) throw new LongspanException(field + ".files: at least one text file or directory is needed");
        if (!Files.isRegularFile(heldOut)) throw new LongspanException(field + ".held_out: " + heldOut + ": no such file");
        List<Path> files = new ArrayList<>();
        for (Path s : sources) {
            if (Files.isDirectory(s)) {
                try (Stream<Path> list = Files.list(s)) {
                    list.filter(p -> p.getFileName().toString().endsWith(".txt") && Files.isRegularFile(p))
                            .sorted().filter(p -> !sameFile(p, heldOut)).forEach(files::add);
                } catch (IOException e) {
                    throw new LongspanException(field + ".files: " + s + ": cannot list: " + dev.longspan.io.IoErrors.reason(e), e);
                }
            } else if (sameFile(s, heldOut)) {
                throw new LongspanException(field + ".files: " + s + " is the held-out file (" + field + ".held_out)");
            } else {
                files.add(s);
            }
        }
        if (files.isEmpty()) throw new LongspanException(field + ".files: no text file besides the held-out one");
        byte[][] texts = new byte[files.size()][];
        for (int i = 0; i < texts.length; i++) {
            Path p = files.get(i);
            try {
                texts[i] = Files.readAllBytes(p);
            } catch (NoSuchFileException e) {
                throw new LongspanException(field + ".files: " + p + ": no such file");
            } catch (IOException e) {
                throw new LongspanException(field + ".files: " + p + ": cannot read: " + dev.longspan.io.IoErrors.reason(e), e);
            }
            if (texts[i].length == 0) throw new LongspanException(field + ".files: " + p + ": the file is empty");
        }
        return new HaystackText(files, texts);
    }

    /** Whether two paths name the same file (real paths when both exist, else normalised absolute paths). */
    static boolean sameFile(Path a, Path b) {
        try {
            if (Files.exists(a) && Files.exists(b)) return Files.isSameFile(a, b);
        } catch (IOException e) {
            // fall through to the textual comparison
        }
        return a.toAbsolutePath().normalize().equals(b.toAbsolutePath().normalize());
    }

    /** The files read (the held-out one is never among them). */
    public List<Path> files() { return files; }

    public long bytes() { return total; }

    /**
     * A filler reading one stream from an offset drawn from {@code rnd} (uniform over all bytes,
     * so files are weighted by length); successive {@code fill} calls continue the stream.
     */
    public PasskeyTask.Filler stream(SplittableRandom rnd) {
        long at = (long) (rnd.nextDouble() * total);
        int f = 0;
        while (at >= texts[f].length) { at -= texts[f].length; f++; }
        byte[] text = texts[f];
        int[] pos = {(int) at};
        return (dst, from, n) -> {
            int p = pos[0];
            for (int i = 0; i < n; i++) {
                dst[from + i] = text[p];
                if (++p == text.length) p = 0;
            }
            pos[0] = p;
        };
    }
}

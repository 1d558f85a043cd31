package dev.longspan.train;

import dev.longspan.util.LongspanException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * UTF-8 text files as byte streams, memory-mapped (never read whole into strings), each split
 * into a training part and a held-out tail ({@code heldOut} fraction of its bytes).
 * Training windows are drawn at random offsets from the training parts, weighted by length.
 */
public final class TextCorpus implements AutoCloseable {
    private final Arena arena = Arena.ofShared();
    private final List<MemorySegment> files = new ArrayList<>();
    private final List<Path> paths = new ArrayList<>();
    private final long[] trainEnd;
    private final long totalTrain;

    public TextCorpus(List<Path> inputs, double heldOut) {
        if (inputs.isEmpty()) throw new LongspanException("--data: at least one text file is needed");
        if (!(heldOut >= 0 && heldOut < 1)) throw new LongspanException("held_out must be in [0, 1), got " + heldOut);
        trainEnd = new long[inputs.size()];
        long total = 0;
        for (int i = 0; i < inputs.size(); i++) {
            Path p = inputs.get(i);
            try (FileChannel ch = open(p)) {
                MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
                if (seg.byteSize() < 2) throw new LongspanException(p + ": the file is empty");
                files.add(seg);
                paths.add(p);
                trainEnd[i] = (long) Math.floor(seg.byteSize() * (1 - heldOut));
                total += trainEnd[i];
            } catch (LongspanException e) {             // a directory, an empty file
                arena.close();
                throw e;
            } catch (NoSuchFileException e) {
                arena.close();
                throw new LongspanException(p + ": no such file");
            } catch (IOException e) {
                arena.close();
                throw new LongspanException(p + ": cannot read: " + dev.longspan.io.IoErrors.reason(e), e);
            }
        }
        totalTrain = total;
    }

    // a directory opens for reading, then fails to map with "No such device": said plainly first
    private static FileChannel open(Path p) throws IOException {
        dev.longspan.io.IoErrors.notADirectory(p);
        return FileChannel.open(p, StandardOpenOption.READ);
    }

    public long trainBytes() { return totalTrain; }

    public long heldOutBytes() {
        long n = 0;
        for (int i = 0; i < files.size(); i++) n += files.get(i).byteSize() - trainEnd[i];
        return n;
    }

    /** Fills dst[0..n) with bytes (as token ids 0..255) from a random training offset. */
    public void trainWindow(SplittableRandom rnd, int[] dst, int n) {
        long at = (long) (rnd.nextDouble() * totalTrain);
        int f = 0;
        while (at >= trainEnd[f]) { at -= trainEnd[f]; f++; }
        copy(f, Math.max(0, Math.min(at, trainEnd[f] - n)), trainEnd[f], dst, 0, n);
    }

    /** Fills dst with the k-th held-out window of n bytes (deterministic; wraps around). */
    public boolean heldOutWindow(int k, int[] dst, int n) {
        long idx = (long) k * n;
        for (int f = 0; f < files.size(); f++) {
            long len = files.get(f).byteSize() - trainEnd[f];
            long windows = len / n;
            if (idx / n < windows) {
                copy(f, trainEnd[f] + idx, files.get(f).byteSize(), dst, 0, n);
                return true;
            }
            idx -= windows * n;
        }
        return false;
    }

    /** Number of whole held-out windows of n bytes. */
    public long heldOutWindows(int n) {
        long w = 0;
        for (int f = 0; f < files.size(); f++) w += (files.get(f).byteSize() - trainEnd[f]) / n;
        return w;
    }

    /** Random filler bytes from the training part (for synthetic tasks with a real haystack). */
    public void filler(SplittableRandom rnd, byte[] dst, int from, int n) {
        int[] tmp = new int[n];
        trainWindow(rnd, tmp, n);
        for (int i = 0; i < n; i++) dst[from + i] = (byte) tmp[i];
    }

    // copies n bytes starting at `at` of file f (cycling inside [0, end) if the file is short)
    private void copy(int f, long at, long end, int[] dst, int dOff, int n) {
        MemorySegment s = files.get(f);
        long start = at == end ? 0 : at;
        long base = start >= trainEnd[f] ? trainEnd[f] : 0;
        for (int i = 0; i < n; i++) {
            long p = start + i;
            if (p >= end) p = base + (p - base) % Math.max(1, end - base);
            dst[dOff + i] = s.get(ValueLayout.JAVA_BYTE, p) & 0xff;
        }
    }

    public List<Path> paths() { return List.copyOf(paths); }

    @Override
    public void close() { arena.close(); }
}

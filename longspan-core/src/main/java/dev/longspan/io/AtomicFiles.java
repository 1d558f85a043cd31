package dev.longspan.io;

import dev.longspan.util.LongspanException;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;

/**
 * Writes files atomically: into a temporary file beside the target, then a rename.
 *
 * <p>The temporary file is created as any new file is (mode 0666 less the umask), not with
 * {@code Files.createTempFile}, whose files are always 0600: the rename keeps the mode, and a model
 * or a plot must be readable by whoever the user's umask lets read their files.
 *
 * <p>Nothing stops a hard kill (SIGKILL, power loss) from leaving a temporary file behind: Java
 * cannot create an unnamed file and link it in later. So temporary names say whose they are,
 * {@code .NAME.PID-RANDOM.tmp}: an orderly exit (Ctrl-C, SIGTERM) deletes the files still being
 * written from a shutdown hook, and the next write of the same target deletes those left by a
 * process that no longer runs. Temporary files of live processes are kept, so that two processes
 * writing one target never break each other's rename.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    private static final String SUFFIX = ".tmp";
    private static final String PROBE = "longspan-probe";
    private static final java.util.regex.Pattern OWNER = java.util.regex.Pattern.compile("(\\d+)-[0-9a-z]+");
    private static final long PID = ProcessHandle.current().pid();
    private static final Set<Path> IN_PROGRESS = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            for (Path p : IN_PROGRESS) deleteQuietly(p);
        }, "longspan-temp-cleanup"));
    }

    @FunctionalInterface
    public interface Writer {
        void write(OutputStream out) throws IOException;
    }

    /** Writes the target through a temp file in the same directory, then renames it into place. */
    public static void write(Path target, Writer writer) {
        Path abs = target.toAbsolutePath();
        if (Files.isDirectory(abs)) throw new LongspanException(target + ": is a directory (a file name was expected)");
        Path dir = abs.getParent();
        String name = abs.getFileName().toString();
        createDirectories(target, target.getParent());
        deleteStaleTemps(dir, name);
        Path tmp = dir.resolve(tempName(name));
        IN_PROGRESS.add(tmp);
        try {
            try (OutputStream out = new java.io.BufferedOutputStream(
                    Files.newOutputStream(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE), 1 << 20)) {
                writer.write(out);
            }
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new LongspanException(target + ": cannot write: " + reason(e), e);
        } finally {
            deleteQuietly(tmp); // gone already when the rename succeeded
            IN_PROGRESS.remove(tmp);
        }
    }

    /** Writes a string (UTF-8) atomically. */
    public static void writeString(Path target, String text) {
        write(target, out -> out.write(text.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    }

    /**
     * Checks before long work that result files can be written into {@code dir}: creates it and a
     * probe file there (deleted at once), so that a run does not end with nowhere to put its results.
     */
    public static void checkWritableDirectory(Path dir) {
        Path abs = dir.toAbsolutePath();
        if (Files.exists(abs) && !Files.isDirectory(abs)) throw new LongspanException(dir + ": is a file, not a directory");
        createDirectories(dir, dir);
        Path probe = abs.resolve(tempName(PROBE));
        IN_PROGRESS.add(probe);
        try {
            Files.newOutputStream(probe, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE).close();
        } catch (IOException e) {
            throw new LongspanException(dir + ": cannot write there: " + reason(e), e);
        } finally {
            deleteQuietly(probe);
            IN_PROGRESS.remove(probe);
        }
    }

    /** {@link #checkWritableDirectory} for the directory of a file to be written, which must not be a directory itself. */
    public static void checkWritable(Path target) {
        Path abs = target.toAbsolutePath();
        if (Files.isDirectory(abs)) throw new LongspanException(target + ": is a directory (a file name was expected)");
        checkWritableDirectory(abs.getParent());
    }

    /**
     * Whether a directory entry is the probe file {@link #checkWritableDirectory} makes for an instant: a
     * directory's emptiness check must not count it (another process — an MPI rank — may be probing the
     * same directory at that moment).
     */
    public static boolean isProbe(String fileName) {
        return fileName.startsWith("." + PROBE + ".") && fileName.endsWith(SUFFIX);
    }

    static String tempName(String name) {
        return "." + name + "." + PID + "-" + Long.toString(ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE, 36) + SUFFIX;
    }

    // Temporary files of this target whose writer is gone (killed hard). Only names this class
    // makes match, so another target's files (".a.b.*.tmp" against target "a") are never taken.
    private static void deleteStaleTemps(Path dir, String name) {
        String prefix = "." + name + ".";
        DirectoryStream.Filter<Path> ours = p -> {
            String f = p.getFileName().toString();
            return f.startsWith(prefix) && f.endsWith(SUFFIX) && f.length() > prefix.length() + SUFFIX.length();
        };
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, ours)) {
            for (Path p : s) {
                String f = p.getFileName().toString();
                Matcher m = OWNER.matcher(f.substring(prefix.length(), f.length() - SUFFIX.length()));
                if (!m.matches()) continue;
                long pid;
                try {
                    pid = Long.parseLong(m.group(1));
                } catch (NumberFormatException e) {
                    continue;
                }
                if (pid != PID && !ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) deleteQuietly(p);
            }
        } catch (IOException e) {
            // best effort: a stale file left in place is clutter, not a wrong result
        }
    }

    /** Creates {@code dir} (null: the working directory), naming the file in the way when there is one. */
    private static void createDirectories(Path what, Path dir) {
        if (dir == null) return;
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            for (Path p = dir; p != null; p = p.getParent()) {
                if (Files.exists(p) && !Files.isDirectory(p)) {
                    throw new LongspanException(what + ": cannot be created: " + p + " is a file, not a directory", e);
                }
            }
            throw new LongspanException(what + ": cannot create the directory " + dir + ": " + reason(e), e);
        }
    }

    // The cause without the file names of the exception: those would show the temporary name.
    private static String reason(IOException e) {
        if (e instanceof AccessDeniedException) return "permission denied";
        if (e instanceof NoSuchFileException) return "no such file or directory";
        if (e instanceof FileSystemException fe) return fe.getReason() != null ? fe.getReason() : e.getClass().getSimpleName();
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // best effort: a leftover is recognisable by its name and removed by the next write of its target
        }
    }
}

package dev.longspan.io;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;

/**
 * What an I/O failure means, in words for an error line: the JDK's file exceptions carry the path
 * as their message ("cannot read: x.gguf" says nothing), the reason is in their type.
 */
public final class IoErrors {
    private IoErrors() {}

    /** The bytes of a file the user named; a missing or unreadable one is one line naming it (exit 2). */
    public static byte[] readUserFile(java.nio.file.Path p) {
        try {
            return java.nio.file.Files.readAllBytes(p);
        } catch (NoSuchFileException e) {
            throw new dev.longspan.util.LongspanException(p + ": no such file");
        } catch (IOException e) {
            throw new dev.longspan.util.LongspanException(p + ": cannot read: " + reason(e));
        }
    }

    /**
     * One line naming p when it is a directory where a file was asked for: reading one fails with a
     * reason that does not say so (mapping it: "No such device").
     */
    public static void notADirectory(java.nio.file.Path p) {
        if (java.nio.file.Files.isDirectory(p)) {
            throw new dev.longspan.util.LongspanException(p + ": is a directory, not a file (name the files in it, e.g. " + p.resolve("*.txt") + ")");
        }
    }

    public static String reason(IOException e) {
        return switch (e) {
            case AccessDeniedException a -> "permission denied";
            case NoSuchFileException n -> "no such file";
            case NotDirectoryException n -> "not a directory";
            case FileSystemException f when f.getReason() != null -> f.getReason();
            // reading a directory (Files.readAllBytes, readString) fails with the system's EISDIR text
            case IOException d when "Is a directory".equals(d.getMessage()) -> "is a directory, not a file";
            default -> e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
        };
    }
}

package dev.longspan.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Runs the CLI in-process, capturing standard output and error. */
record CliRun(int exit, String out, String err) {
    /** A file of ../shared/data (beside the checkout), or of /work/shared/data where the checkout has none beside it. */
    static Path shared(String rel) {
        Path p = Path.of(System.getProperty("user.dir")).resolve("../../shared/data").resolve(rel).normalize();
        return Files.exists(p) ? p : Path.of("/work/shared/data").resolve(rel);
    }

    static synchronized CliRun of(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int code = Main.execute(args);
            return new CliRun(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }
}

package dev.longspan.cli;

import dev.longspan.kernel.Simd;
import dev.longspan.tensor.Parallel;
import dev.longspan.util.Heap;
import dev.longspan.util.Log;
import dev.longspan.util.LongspanFailure;
import dev.longspan.util.LongspanException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.InputStream;
import java.util.Properties;

/**
 * The {@code longspan} command. Exit codes: 0 success, 2 bad input, usage or a job too large for
 * the heap (one clear line on standard error), 1 internal failure.
 */
@Command(name = "longspan",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = "Longspan: a Java engine for long-context transformers.",
        subcommands = {DemoCommand.class, TrainCommand.class, GenerateCommand.class, InfoCommand.class, PasskeyCommand.class,
                PerplexityCommand.class, AblateCommand.class, AttentionCommand.class, RopeCommand.class, TokenizeCommand.class, ChatTemplateCommand.class, ExportCommand.class, ServeCommand.class,
                BenchCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    public static final int EXIT_OK = 0;
    public static final int EXIT_INTERNAL = 1;
    public static final int EXIT_BAD_INPUT = 2;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    // `longspan --threads 2 passkey ...`: set while the line is parsed, so before the command runs
    @CommandLine.Option(names = "--threads", paramLabel = "T", description = "Worker threads of the command that follows (default: all cores).")
    void threads(int threads) {
        if (threads < 1) throw new CommandLine.ParameterException(spec.commandLine(), "--threads must be at least 1, got " + threads);
        Parallel.setThreads(threads);
    }

    @Override
    public void run() {
        spec.commandLine().usage(System.err);
        throw new CommandLine.ParameterException(spec.commandLine(), "a command is required (see the list above)");
    }

    public static void main(String[] args) {
        // the one-time kernel choice: say so when the Vector API is not used (it is 10-20x slower)
        if (!Simd.ENABLED) Log.warn(Simd.REASON);
        System.exit(execute(args));
    }

    /**
     * Runs the command line and returns the exit code (used by tests, without System.exit). Every
     * failure but an internal error writes exactly one line to standard error: a usage error names
     * the help to read on that same line.
     */
    public static int execute(String... args) {
        CommandLine cl = new CommandLine(new Main());
        cl.setOut(new java.io.PrintWriter(System.out, true));
        cl.setErr(new java.io.PrintWriter(System.err, true));
        cl.setExitCodeExceptionMapper(t -> t instanceof LongspanException ? EXIT_BAD_INPUT : EXIT_INTERNAL);
        cl.setParameterExceptionHandler((ex, a) -> {
            ex.getCommandLine().getErr().println("longspan: " + ex.getMessage() + " (see '"
                    + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help')");
            return EXIT_BAD_INPUT;
        });
        cl.setExecutionExceptionHandler((ex, c, parsed) -> {
            if (ex instanceof LongspanException) {
                c.getErr().println("longspan: " + ex.getMessage());
                return EXIT_BAD_INPUT;
            }
            if (ex instanceof LongspanFailure) {
                c.getErr().println("longspan: " + ex.getMessage());
                return EXIT_INTERNAL;
            }
            c.getErr().println("longspan: internal error: " + ex);
            ex.printStackTrace(c.getErr());
            return EXIT_INTERNAL;
        });
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {
            // the last resort: what the commands' memory estimates did not foresee (picocli lets
            // Errors through); too large a job for the heap is the user's input, like any other
            cl.getErr().println("longspan: " + Heap.outOfMemoryMessage());
            return EXIT_BAD_INPUT;
        }
    }

    /** Shared options of commands that compute. */
    public static final class ComputeOptions {
        @CommandLine.Option(names = "--threads", paramLabel = "T",
                description = "Worker threads (default: all cores); also accepted before the command name.")
        Integer threads;

        public void apply() {
            if (threads != null) {
                if (threads < 1) throw new LongspanException("--threads must be at least 1, got " + threads);
                Parallel.setThreads(threads);
            }
            Log.debug(Simd.REASON);
        }
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = "unknown";
            try (InputStream in = Main.class.getResourceAsStream("version.properties")) {
                if (in != null) {
                    Properties p = new Properties();
                    p.load(in);
                    v = p.getProperty("version", v);
                }
            } catch (java.io.IOException ignored) {
                // fall through with "unknown"
            }
            return new String[]{
                    "longspan " + v,
                    "JVM: " + System.getProperty("java.vm.name") + " " + Runtime.version(),
                    "Kernels: " + Simd.REASON,
                    "Threads: " + Parallel.threads()};
        }
    }
}

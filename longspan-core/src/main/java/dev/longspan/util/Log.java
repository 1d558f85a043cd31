package dev.longspan.util;

import java.io.PrintStream;

/**
 * The one logger of longspan-core: plain lines on standard error, never standard output
 * (standard output belongs to a command's result, e.g. its --json object).
 * Level from the system property {@code longspan.log} (error, warn, info, debug; default info);
 * {@code longspan.quiet=true} is a shorthand for warn.
 */
public final class Log {
    public enum Level { ERROR, WARN, INFO, DEBUG }

    private static volatile Level level = initialLevel();
    private static final PrintStream ERR = System.err;

    private Log() {}

    private static Level initialLevel() {
        String v = System.getProperty("longspan.log");
        if (v != null) {
            try {
                return Level.valueOf(v.trim().toUpperCase(java.util.Locale.ROOT));
            } catch (IllegalArgumentException e) {
                System.err.println("longspan: ignoring unknown longspan.log level '" + v + "' (use error, warn, info or debug)");
            }
        }
        return Boolean.getBoolean("longspan.quiet") ? Level.WARN : Level.INFO;
    }

    public static void setLevel(Level l) { level = l; }

    public static boolean enabled(Level l) { return l.ordinal() <= level.ordinal(); }

    public static void error(String msg) { emit(Level.ERROR, msg); }
    public static void warn(String msg) { emit(Level.WARN, msg); }
    public static void info(String msg) { emit(Level.INFO, msg); }
    public static void debug(String msg) { emit(Level.DEBUG, msg); }

    private static void emit(Level l, String msg) {
        if (enabled(l)) {
            ERR.println("[longspan " + l.name().toLowerCase(java.util.Locale.ROOT) + "] " + msg);
        }
    }
}

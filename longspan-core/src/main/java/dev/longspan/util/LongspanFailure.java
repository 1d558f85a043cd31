package dev.longspan.util;

/**
 * A failure that is not bad input but that its message explains in full (a training run whose
 * loss diverged): the CLI prints it as one line and exits with code 1, without a stack trace.
 */
public class LongspanFailure extends RuntimeException {
    public LongspanFailure(String message) { super(message); }
}

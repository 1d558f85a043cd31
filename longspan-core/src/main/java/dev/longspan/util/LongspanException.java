package dev.longspan.util;

/**
 * Bad input: a file, field, argument or configuration that Longspan cannot accept.
 * The message names the thing that is wrong and says what was expected; the CLI prints it
 * as one line and exits with code 2. Internal failures are ordinary exceptions (exit 1).
 */
public class LongspanException extends RuntimeException {
    public LongspanException(String message) { super(message); }
    public LongspanException(String message, Throwable cause) { super(message, cause); }
}

package dev.longspan.model;

import dev.longspan.io.Tokenizer;

import java.util.Arrays;

/**
 * Turns generated ids into text incrementally so that the pieces concatenate to exactly what the
 * new ids add to the decoded context: decoded text of (context + generated) = decoded context +
 * every piece. Decoding a token on its own would lose what depends on its neighbours: the
 * leading space a SentencePiece-style decoder strips at the start of a decode, and the bytes of a
 * character split over several byte tokens.
 *
 * <p>Each step decodes a short window that starts at the previous piece (a character boundary),
 * once without and once with the new ids, and emits the difference; a difference ending in an
 * incomplete character (U+FFFD) is held back until a later id completes it (or {@link #finish}).
 */
public final class TextStream {
    private final Tokenizer tok;
    private int[] ids;
    private int size;
    private int prefix;   // start of the window decoded each step (a character boundary)
    private int read;     // ids before this are emitted
    private final StringBuilder text = new StringBuilder();

    /**
     * context: the ids already there (the prompt, BOS included if fed); their text is not emitted.
     * They must decode to whole characters, as the ids of encoded text do.
     */
    public TextStream(Tokenizer tok, int[] context) {
        this.tok = tok;
        this.ids = Arrays.copyOf(context, Math.max(16, context.length + 16));
        this.size = context.length;
        this.prefix = 0;
        this.read = context.length;
    }

    /** Adds one generated id; returns the text that became complete (possibly empty). */
    public String push(int id) {
        if (size == ids.length) ids = Arrays.copyOf(ids, 2 * size);
        ids[size++] = id;
        String before = tok.decode(ids, prefix, read), after = tok.decode(ids, prefix, size);
        if (after.length() <= before.length() || after.endsWith("\uFFFD")) return "";
        String piece = after.substring(before.length());
        prefix = read;
        read = size;
        text.append(piece);
        return piece;
    }

    /** The text of ids still held back (an incomplete character shows as U+FFFD); the stream ends. */
    public String finish() {
        if (read == size) return "";
        String piece = tok.decode(ids, prefix, size).substring(tok.decode(ids, prefix, read).length());
        prefix = read;
        read = size;
        text.append(piece);
        return piece;
    }

    /** Everything emitted so far. */
    public String text() { return text.toString(); }
}

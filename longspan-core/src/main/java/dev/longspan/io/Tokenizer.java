package dev.longspan.io;


/**
 * Text ↔ token ids. One interface for Longspan's own byte tokenizer and for real-model tokenizers
 * (BPE from tokenizer.json, GGUF's gpt2 and llama vocabularies).
 * {@link #encode} never adds BOS/EOS: callers add special tokens where the model wants them.
 */
public interface Tokenizer {
    /** Token ids of the text, without special tokens added. */
    int[] encode(String text);

    /**
     * Token ids of the text; with parseSpecial false, control tokens written in the text stay plain text
     * (llama.cpp's parse_special). Tokenizers that know no such distinction ignore the flag.
     */
    default int[] encode(String text, boolean parseSpecial) { return encode(text); }

    /** The raw bytes a token stands for (a special token gives its text as UTF-8). */
    byte[] tokenBytes(int id);

    /** Decodes ids [from, to) into text; invalid UTF-8 becomes U+FFFD. */
    default String decode(int[] ids, int from, int to) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int i = from; i < to; i++) out.writeBytes(tokenBytes(ids[i]));
        return Utf8.decode(out.toByteArray());
    }

    default String decode(int[] ids) { return decode(ids, 0, ids.length); }

    /** The clean-up of tokenization spaces the model file asks for when text is shown ({@link #detokenize}). */
    default SpaceCleanup spaceCleanup() { return SpaceCleanup.NONE; }

    /**
     * The text of the ids as the model's own tools show it (llama.cpp's {@code llama_detokenize}, Hugging
     * Face's {@code decode}): {@link #decode}, then {@link #spaceCleanup}. Not concatenative, so generation
     * uses {@link #decode} (prompt text + completion text is the decoded text of all ids).
     */
    default String detokenize(int[] ids) { return spaceCleanup().apply(decode(ids)); }

    /** Number of token ids (the model's vocabulary size must be at least this). */
    int vocabSize();

    /** Beginning-of-sequence id, or -1 when the tokenizer has none. */
    int bosId();

    /** End-of-sequence id (the main stop token), or -1. */
    int eosId();

    /** All ids that end generation (EOS plus e.g. end-of-turn tokens). */
    default int[] stopIds() { return eosId() < 0 ? new int[0] : new int[]{eosId()}; }

    /** True when the model expects BOS before a prompt (callers add it; {@link #encode} never does). */
    default boolean addBos() { return false; }

    /** The id of a token given by its exact vocabulary text (e.g. "<|im_end|>"), or -1. */
    default int tokenId(String token) { return -1; }

    /** Padding id, or -1. */
    default int padId() { return -1; }

    /** A short description for `info` output, e.g. "byte (259 tokens)". */
    String describe();
}

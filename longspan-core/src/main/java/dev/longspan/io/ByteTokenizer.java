package dev.longspan.io;

import dev.longspan.util.LongspanException;

import java.nio.charset.StandardCharsets;

/**
 * Longspan's tokenizer for self-trained models: ids 0..255 are the bytes of the UTF-8 text,
 * 256 = BOS, 257 = EOS, 258 = PAD. Every string round-trips exactly.
 */
public final class ByteTokenizer implements Tokenizer {
    public static final int BOS = 256;
    public static final int EOS = 257;
    public static final int PAD = 258;
    public static final int VOCAB = 259;
    public static final ByteTokenizer INSTANCE = new ByteTokenizer();

    private static final byte[][] SPECIAL = {
            "<s>".getBytes(StandardCharsets.UTF_8), "</s>".getBytes(StandardCharsets.UTF_8), new byte[0]};

    @Override
    public int[] encode(String text) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[b.length];
        for (int i = 0; i < b.length; i++) ids[i] = b[i] & 0xff;
        return ids;
    }

    /** Token ids of raw bytes. */
    public static int[] encodeBytes(byte[] b, int from, int to) {
        int[] ids = new int[to - from];
        for (int i = from; i < to; i++) ids[i - from] = b[i] & 0xff;
        return ids;
    }

    @Override
    public byte[] tokenBytes(int id) {
        if (id >= 0 && id < 256) return new byte[]{(byte) id};
        if (id >= 256 && id < VOCAB) return SPECIAL[id - 256];
        throw new LongspanException("token id " + id + " is outside the byte tokenizer's vocabulary (0.." + (VOCAB - 1) + ")");
    }

    @Override
    public String decode(int[] ids, int from, int to) {
        byte[] b = new byte[to - from];
        int n = 0;
        for (int i = from; i < to; i++) {
            int id = ids[i];
            if (id >= 0 && id < 256) b[n++] = (byte) id;
            else if (id >= VOCAB || id < 0) tokenBytes(id); // throws with a clear message
        }
        return Utf8.decode(b, 0, n);
    }

    @Override public int vocabSize() { return VOCAB; }
    @Override public int bosId() { return BOS; }
    @Override public int eosId() { return EOS; }
    @Override public int padId() { return PAD; }
    @Override public String describe() { return "byte (256 bytes + BOS/EOS/PAD = " + VOCAB + " tokens)"; }
}

package dev.longspan.model;

import dev.longspan.util.Heap;

/**
 * What a command will hold on the heap at its peak, counted from the buffers the training pass and
 * the inference session allocate (see {@link TrainingPass} and {@link InferenceSession}), so that
 * work too large for the heap is refused with one line before anything is allocated. The counts
 * leave out small and transient buffers: an estimate stays below the real peak (it must never
 * refuse what fits) and within about 2x of it. A training run's total (optimizer state, the
 * curriculum's lengths) is {@code train.TrainingMemory}, built on {@link #trainingPass}.
 */
public final class MemoryEstimate {
    private MemoryEstimate() {}

    /**
     * One training pass of T tokens: the residual stream of every layer, the activations of every
     * layer (of one layer when recomputing), the head's logits and their gradient, one layer's
     * gradient scratch and the attention backward's gradients; with a select-and-merge layer, the
     * transposed copy of one layer's keys and values its kernel makes.
     */
    public static long trainingPass(ModelConfig c, int T, boolean recompute) {
        long d = c.dim(), q = c.qDim(), kv = c.kvDim(), f = c.ffnDim(), V = c.vocabSize(), H = c.heads(), L = c.layers();
        long layer = 3 * d + 4 * q + 4 * kv + 3 * f + H + 2 + (c.qkNorm() ? q + kv + H + c.kvHeads() : 0);
        long residual = (L + 1) * d;
        long head = 3 * d + 2 * V + 2;
        long grads = 2 * d + 4 * q + 4 * kv + 3 * f;
        long attentionBackward = q + 2 * kv + 2 * (q - kv);
        long perToken = residual + (recompute ? 1 : L) * layer + head + grads + attentionBackward;
        boolean selects = c.attention().stream().anyMatch(dev.longspan.attention.Plan::selects);
        return 4L * T * perToken + (selects ? dev.longspan.attention.Attention.transposedKeyValueBytes(kv, T) : 0);
    }

    /**
     * An inference session of {@code capacity} positions whose largest chunk is {@code chunk}
     * tokens and that returns logits for {@code lastRows} of them: the parameters, every layer's KV
     * cache (a ring of reach + {@link InferenceSession#MAX_CHUNK} positions for a layer whose
     * pattern reaches a bounded distance back, all positions otherwise; f16 or f32) and the
     * activations of one part of the chunk (the session feeds at most MAX_CHUNK tokens at once).
     */
    public static long inference(ModelConfig c, int capacity, int chunk, int lastRows, boolean halfKv) {
        long bytes = 4L * c.parameterCount();
        long kvBytes = halfKv ? 2 : 4;
        for (int l = 0; l < c.layers(); l++) bytes += 2 * kvBytes * c.kvDim() * ring(c, l, capacity);
        if (c.shifted()) bytes += 4L * capacity;   // the tokens so far: each chunk's first rows read the ones before them
        long d = c.dim(), q = c.qDim(), kv = c.kvDim(), f = c.ffnDim();
        bytes += 4L * Math.min(chunk, InferenceSession.MAX_CHUNK) * (2 * d + 4 * q + 4 * kv + 3 * f + c.heads() + 3);
        return bytes + 4L * lastRows * (2 * d + c.vocabSize());
    }

    /** Refuses a training pass of T tokens whose widest buffer (a layer's or the logits) exceeds a Java array. */
    public static void requireTrainingArrays(ModelConfig c, int T, String what) {
        Heap.requireArray((long) T * Math.max(widest(c), c.vocabSize()), what);
    }

    /** Refuses one training pass of T tokens beside the parameters and their gradients (a benchmark's step). */
    public static void requireTrainingPass(ModelConfig c, int T, boolean recompute, String what) {
        requireTrainingArrays(c, T, what);
        Heap.require(2 * 4L * c.parameterCount() + trainingPass(c, T, recompute), what);
    }

    /** Refuses an inference session that does not fit in the heap or in Java arrays. */
    public static void requireInference(ModelConfig c, int capacity, int chunk, int lastRows, boolean halfKv, String what) {
        Heap.requireArray((long) Math.min(chunk, InferenceSession.MAX_CHUNK) * widest(c), what);
        Heap.requireArray((long) lastRows * c.vocabSize(), what);
        for (int l = 0; l < c.layers(); l++) Heap.requireArray((long) c.kvDim() * ring(c, l, capacity), what + " (KV cache)");
        Heap.require(inference(c, capacity, chunk, lastRows, halfKv), what);
    }

    // the widest per-token buffer of a layer (its length is tokens × this); training also has
    // logits for every token, inference only for the rows it returns
    private static long widest(ModelConfig c) {
        return Math.max(Math.max(c.dim(), c.qDim()), c.ffnDim());
    }

    // positions layer l keeps in its KV cache, as InferenceSession sizes its ring
    private static long ring(ModelConfig c, int l, int capacity) {
        return Math.min(capacity, c.attention().get(l).reach() + InferenceSession.MAX_CHUNK);
    }
}

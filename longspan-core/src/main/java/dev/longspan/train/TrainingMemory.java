package dev.longspan.train;

import dev.longspan.model.MemoryEstimate;
import dev.longspan.model.ModelConfig;
import dev.longspan.util.Heap;

import java.util.TreeSet;

/**
 * What a training run holds on the heap at its peak, so that a run too large for the heap is
 * refused with one line before anything is allocated: the model's training passes
 * ({@link MemoryEstimate#trainingPass}) plus what only a run has, the optimizer state and the
 * curriculum's sequence lengths.
 */
public final class TrainingMemory {
    private TrainingMemory() {}

    /**
     * A training run: parameters, gradients and the AdamW moments (4 floats per parameter), the
     * copies a checkpoint makes while it is written, and one training pass per sequence length the
     * run uses (the curriculum's and seq_len; each pass is kept once built).
     */
    public static long estimate(TrainConfig tc) {
        ModelConfig c = tc.model();
        long bytes = 5 * 4L * c.parameterCount();
        TreeSet<Integer> lengths = new TreeSet<>();
        lengths.add(tc.seqLen());
        for (int[] step : tc.curriculum()) lengths.add(step[1]);
        for (int n : lengths) bytes += MemoryEstimate.trainingPass(c, n, tc.recompute());
        // tokens, targets and positions of one micro-batch (the batch's sequences run one after another)
        return bytes + 16L * tc.seqLen();
    }

    /** Refuses a training run that does not fit in the heap or in Java arrays. */
    public static void require(TrainConfig tc, String what) {
        MemoryEstimate.requireTrainingArrays(tc.model(), tc.seqLen(), what);
        Heap.require(estimate(tc), what);
    }
}

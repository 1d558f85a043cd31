package dev.longspan.model;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Which parameters a {@link TrainingPass} differentiates and where their gradients go. Full
 * training: every tensor of the parameter array, at its own offset. LoRA: the adapters first, at
 * their offsets in {@link Lora#weights} (which the gradient array then shares), then the tensors
 * named to train as well, one after the other; everything else is frozen and gets no gradient.
 */
public final class GradientLayout {
    private final int size;
    private final Map<Integer, Integer> at;   // tensor offset in params → offset in the gradients; null: identity

    private GradientLayout(int size, Map<Integer, Integer> at) {
        this.size = size;
        this.at = at;
    }

    /** Every parameter of m, gradients laid out as {@link Transformer#params}. */
    public static GradientLayout all(Transformer m) {
        m.requireParams("train");
        return new GradientLayout(m.params.length, null);
    }

    /**
     * The adapters of m (first {@code m.lora.size()} values) and then the given tensors of the
     * parameter array, in that order.
     */
    public static GradientLayout adapters(Transformer m, List<Transformer.Tensor> alsoTrained) {
        if (m.lora == null) throw new IllegalArgumentException("the model has no adapters");
        Map<Integer, Integer> at = new HashMap<>();
        int off = m.lora.size();
        for (Transformer.Tensor t : alsoTrained) {
            if (t.offset() < 0) throw new IllegalArgumentException(t.name() + " is not in the parameter array");
            at.put(t.offset(), off);
            off += t.size();
        }
        return new GradientLayout(off, at);
    }

    /** Length of the gradient array. */
    public int size() { return size; }

    /** Where the gradient of the tensor starting at {@code paramOffset} of the parameter array lies; -1: frozen. */
    public int of(int paramOffset) {
        if (at == null) return paramOffset;
        return paramOffset < 0 ? -1 : at.getOrDefault(paramOffset, -1);
    }
}

package dev.longspan.model;

import dev.longspan.attention.SelectedPositions;
import dev.longspan.position.Rope;
import dev.longspan.position.RopeConfig;
import dev.longspan.util.LongspanException;

import java.util.function.LongUnaryOperator;

/** A layer's RoPE as the attention engine needs it for select-and-merge's {@code pos=selected}. */
public final class RopePositions {
    private RopePositions() {}

    /**
     * Plain RoPE (base 10000) at positions 0..N−1: for a {@code pos=selected} plan counted or timed
     * outside a model, where the pairs depend on the selection and not on the rotation.
     */
    public static SelectedPositions plain(int headDim) {
        return of(new Rope(RopeConfig.plain(10000, headDim)), i -> i);
    }

    /**
     * The rotation of {@code rope}, with sequence index i rotated at position
     * {@code rope.mapPosition(positionOf(i))} (training: the step's positions; inference: i).
     */
    public static SelectedPositions of(Rope rope, LongUnaryOperator positionOf) {
        if (rope.lengthDependent()) {
            throw new LongspanException("pos=selected needs RoPE frequencies that do not depend on the length; rope kind "
                    + rope.config().kind() + " has them depend on it");
        }
        int half = rope.rotaryDims() / 2;
        int[] first = new int[half], second = new int[half];
        for (int i = 0; i < half; i++) {
            first[i] = rope.config().pairing().first(i, rope.rotaryDims());
            second[i] = rope.config().pairing().second(i, rope.rotaryDims());
        }
        return new SelectedPositions(i -> rope.mapPosition(positionOf.applyAsLong(i)), rope.inverseFrequencies(0), first, second);
    }
}

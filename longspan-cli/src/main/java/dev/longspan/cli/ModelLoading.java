package dev.longspan.cli;

import dev.longspan.model.AttentionPlan;
import dev.longspan.model.Transformer;
import dev.longspan.train.Checkpoint;

import java.nio.file.Path;

/** Loads a model and applies --attention / --rope overrides. */
final class ModelLoading {
    private ModelLoading() {}

    static Transformer load(Path dir, String attention, String rope) {
        Transformer m = Checkpoint.loadModel(dir);
        var c = m.config;
        if (attention != null) c = c.withAttention(AttentionPlan.expand(attention, c.layers(), "--attention"));
        if (rope != null) c = c.withRope(rope);
        if (c == m.config) return m;
        Transformer t = new Transformer(c);
        System.arraycopy(m.params, 0, t.params, 0, m.params.length);
        return t;
    }
}

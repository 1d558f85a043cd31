package dev.longspan.position;

/** Plain-Java rotation bodies: the reference twins of {@link RopeVector}. */
final class RopeScalar {
    private RopeScalar() {}

    // x: one head vector at xo; pairs (x[i], x[i+half]); cos/sin rows at co
    static void rotateHalf(float[] x, int xo, int half, float[] cos, float[] sin, int co) {
        for (int i = 0; i < half; i++) {
            float x1 = x[xo + i], x2 = x[xo + half + i], c = cos[co + i], s = sin[co + i];
            x[xo + i] = x1 * c - x2 * s;
            x[xo + half + i] = x1 * s + x2 * c;
        }
    }

    // pairs (x[2i], x[2i+1])
    static void rotateInterleaved(float[] x, int xo, int half, float[] cos, float[] sin, int co) {
        for (int i = 0; i < half; i++) {
            int a = xo + 2 * i;
            float x1 = x[a], x2 = x[a + 1], c = cos[co + i], s = sin[co + i];
            x[a] = x1 * c - x2 * s;
            x[a + 1] = x1 * s + x2 * c;
        }
    }
}

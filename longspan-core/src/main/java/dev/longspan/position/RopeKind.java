package dev.longspan.position;

import dev.longspan.util.LongspanException;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * The rotary position encodings Longspan knows. Each kind decides the inverse frequencies
 * (and, for YaRN, the rotation scale); the rotation itself is the same for all of them.
 * See docs/POSITIONS.md for each formula.
 */
public enum RopeKind {
    /** Plain RoPE: theta_i = base^(-2i/d). */
    ROPE("rope"),
    /** Position interpolation: every frequency divided by the factor (= positions divided by it). */
    LINEAR("linear"),
    /** Static NTK-aware scaling: base' = base * s^(d/(d-2)). */
    NTK("ntk"),
    /** Dynamic NTK (Hugging Face "dynamic"): base recomputed from the current length max(pos)+1. */
    DYNAMIC_NTK("dynamic-ntk"),
    /** YaRN: NTK-by-parts ramp between original and interpolated frequencies, plus a rotation scale. */
    YARN("yarn"),
    /** Llama 3.1 frequency scaling with low/high frequency factors. */
    LLAMA3("llama3"),
    /** CRD-NTK: cyclic positions (mod a period), NTK base; random growing offsets at training time. */
    CRD_NTK("crd-ntk");

    /** The name used in specs, config files and messages. */
    public final String id;

    RopeKind(String id) { this.id = id; }

    /** All valid names, comma-separated, for error messages. */
    public static String validNames() {
        return Arrays.stream(values()).map(k -> k.id).collect(Collectors.joining(", "));
    }

    /**
     * Parses a kind name (case-insensitive; '_' and '-' are the same). Unknown names are an error
     * naming the kind and listing the valid ones; there is no silent default.
     */
    public static RopeKind parse(String name) {
        if (name == null || name.isBlank()) throw new LongspanException("RoPE kind is empty; valid kinds: " + validNames());
        String n = name.trim().toLowerCase(Locale.ROOT).replace('_', '-');
        for (RopeKind k : values()) if (k.id.equals(n)) return k;
        throw new LongspanException("unknown RoPE kind '" + name.trim() + "'; valid kinds: " + validNames());
    }

    @Override
    public String toString() { return id; }
}

package dev.longspan.model;

import dev.longspan.attention.Pattern;
import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The attention pattern of every layer. Built from:
 * <ul>
 *   <li>one spec for all layers: {@code "window:size=256"};</li>
 *   <li>a list with one spec per layer;</li>
 *   <li>a MASFormer placement: {@code masformer|full=2|placement=bottom|sparse=window:size=256}
 *       (placement: {@code bottom}, {@code top}, {@code interleaved}, or {@code layers=0,3} for listed
 *       indices; {@code dense=SPEC} overrides the full-attention pattern, default {@code dense}).
 *       As JSON: {@code {"plan": "masformer", "full": 2, "placement": "bottom", "sparse": "..."}}.</li>
 * </ul>
 * Interleaved spreads the k full layers evenly: layer indices round((i + 0.5)·L/k − 0.5).
 * Every layer's spec is parsed here; an error names the field and the layer ({@code field[3]: ...}).
 */
public final class LayerPatterns {
    private LayerPatterns() {}

    /** Expands a plan given as a JSON value (String, List or Map) into one pattern per layer. */
    public static List<Pattern> expand(Object plan, int layers, String field) {
        if (plan == null) return Collections.nCopies(layers, new Pattern.Dense());
        if (plan instanceof String s) return expand(s, layers, field);
        if (plan instanceof List<?> l) {
            if (l.size() != layers) {
                throw new LongspanException(field + ": has " + l.size() + " layer patterns but the model has " + layers + " layers");
            }
            List<String> out = new ArrayList<>();
            for (Object o : l) {
                if (!(o instanceof String s) || s.isBlank()) throw new LongspanException(field + ": every entry must be a pattern spec string, got " + o);
                out.add(s.trim());
            }
            return parse(out, field);
        }
        if (plan instanceof Map<?, ?> m) {
            Object kind = m.get("plan");
            if (!"masformer".equals(kind)) throw new LongspanException(field + ".plan: unknown plan '" + kind + "' (expected masformer)");
            int full = m.get("full") instanceof Number n ? n.intValue() : -1;
            String placement = m.get("placement") instanceof String p ? p : "bottom";
            String sparse = m.get("sparse") instanceof String sp ? sp : null;
            String dense = m.get("dense") instanceof String d ? d : "dense";
            List<Integer> listed = new ArrayList<>();
            if (m.get("layers") instanceof List<?> ls) {
                for (Object o : ls) {
                    if (!(o instanceof Number n)) throw new LongspanException(field + ".layers: expected layer indices, got " + o);
                    listed.add(n.intValue());
                }
                placement = "layers";
                if (full < 0) full = listed.size();
            }
            return masformer(layers, full, placement, listed, dense, sparse, field);
        }
        throw new LongspanException(field + ": expected a pattern spec, a list of specs, or a masformer plan object");
    }

    /** Expands a plan string: one spec for all layers, or {@code masformer|key=value|...}. */
    public static List<Pattern> expand(String plan, int layers, String field) {
        String p = plan.trim();
        if (p.isEmpty()) throw new LongspanException(field + ": empty attention plan");
        if (!p.startsWith("masformer")) return parse(Collections.nCopies(layers, p), field);
        String[] parts = p.split("\\|");
        if (!parts[0].equals("masformer")) throw new LongspanException(field + ": expected 'masformer|full=K|placement=...|sparse=SPEC', got '" + p + "'");
        int full = -1;
        String placement = "bottom", sparse = null, dense = "dense";
        List<Integer> listed = new ArrayList<>();
        for (int i = 1; i < parts.length; i++) {
            String kv = parts[i];
            int eq = kv.indexOf('=');
            if (eq < 0) throw new LongspanException(field + ": '" + kv + "' is not key=value in '" + p + "'");
            String k = kv.substring(0, eq).trim().toLowerCase(Locale.ROOT), v = kv.substring(eq + 1).trim();
            switch (k) {
                case "full" -> full = parseInt(v, field + ": full");
                case "placement" -> placement = v;
                case "sparse" -> sparse = v;
                case "dense" -> dense = v;
                case "layers" -> {
                    placement = "layers";
                    for (String s : v.split(",")) listed.add(parseInt(s.trim(), field + ": layers"));
                    if (full < 0) full = listed.size();
                }
                default -> throw new LongspanException(field + ": unknown masformer key '" + k + "' (full, placement, layers, sparse, dense)");
            }
        }
        return masformer(layers, full, placement, listed, dense, sparse, field);
    }

    private static int parseInt(String v, String what) {
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new LongspanException(what + " must be an integer, got '" + v + "'");
        }
    }

    private static List<Pattern> parse(List<String> specs, String field) {
        List<Pattern> out = new ArrayList<>();
        for (int l = 0; l < specs.size(); l++) {
            try {
                out.add(Pattern.parse(specs.get(l)));
            } catch (LongspanException e) {
                throw new LongspanException(field + "[" + l + "]: " + e.getMessage());
            }
        }
        return List.copyOf(out);
    }

    private static List<Pattern> masformer(int layers, int full, String placement, List<Integer> listed, String dense, String sparse, String field) {
        if (sparse == null || sparse.isBlank()) throw new LongspanException(field + ": a masformer plan needs sparse=SPEC (e.g. window:size=256)");
        if (full < 0 || full > layers) throw new LongspanException(field + ": full must be between 0 and " + layers + ", got " + full);
        boolean[] isFull = new boolean[layers];
        switch (placement.toLowerCase(Locale.ROOT)) {
            case "bottom" -> { for (int i = 0; i < full; i++) isFull[i] = true; }
            case "top" -> { for (int i = 0; i < full; i++) isFull[layers - 1 - i] = true; }
            case "interleaved" -> {
                for (int i = 0; i < full; i++) isFull[(int) Math.round((i + 0.5) * layers / full - 0.5)] = true;
            }
            case "layers" -> {
                for (int i : listed) {
                    if (i < 0 || i >= layers) throw new LongspanException(field + ": layer index " + i + " outside 0.." + (layers - 1));
                    isFull[i] = true;
                }
            }
            default -> throw new LongspanException(field + ": unknown placement '" + placement + "' (bottom, top, interleaved, layers=...)");
        }
        List<String> out = new ArrayList<>();
        for (int i = 0; i < layers; i++) out.add(isFull[i] ? dense : sparse.trim());
        return parse(out, field);
    }
}

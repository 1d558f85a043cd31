package dev.longspan.io;

import dev.longspan.util.LongspanException;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small, strict JSON reader and writer for the file headers and configs longspan-core reads
 * (safetensors headers, config.json, tokenizer.json) — core has no runtime dependencies.
 * Values map to: object → {@code LinkedHashMap<String,Object>} (order kept), array →
 * {@code List<Object>}, string → String, integer → Long (or Double if it does not fit),
 * other number → Double, true/false → Boolean, null → null.
 */
public final class Json {
    private final String s;
    private final String source;
    private int i;

    private Json(String s, String source) {
        this.s = s;
        this.source = source;
    }

    /** Parses one JSON value; {@code source} names the file or field in error messages. */
    public static Object parse(String text, String source) {
        Json p = new Json(text, source);
        p.ws();
        Object v = p.value();
        p.ws();
        if (p.i != p.s.length()) throw p.error("unexpected text after the JSON value");
        return v;
    }

    /** Parses a JSON object. */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> parseObject(String text, String source) {
        Object v = parse(text, source);
        if (!(v instanceof Map)) throw new LongspanException(source + ": expected a JSON object at the top level");
        return (Map<String, Object>) v;
    }

    private LongspanException error(String msg) {
        int line = 1, col = 1;
        for (int k = 0; k < Math.min(i, s.length()); k++) {
            if (s.charAt(k) == '\n') { line++; col = 1; } else col++;
        }
        return new LongspanException(source + ": invalid JSON at line " + line + ", column " + col + ": " + msg);
    }

    private void ws() {
        while (i < s.length()) {
            char c = s.charAt(i);
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') i++; else break;
        }
    }

    private Object value() {
        if (i >= s.length()) throw error("unexpected end of input");
        char c = s.charAt(i);
        return switch (c) {
            case '{' -> object();
            case '[' -> array();
            case '"' -> string();
            case 't' -> literal("true", Boolean.TRUE);
            case 'f' -> literal("false", Boolean.FALSE);
            case 'n' -> literal("null", null);
            default -> {
                if (c == '-' || (c >= '0' && c <= '9')) yield number();
                throw error("unexpected character '" + c + "'");
            }
        };
    }

    private Object literal(String word, Object v) {
        if (!s.startsWith(word, i)) throw error("expected " + word);
        i += word.length();
        return v;
    }

    private Map<String, Object> object() {
        Map<String, Object> m = new LinkedHashMap<>();
        i++;
        ws();
        if (i < s.length() && s.charAt(i) == '}') { i++; return m; }
        while (true) {
            ws();
            if (i >= s.length() || s.charAt(i) != '"') throw error("expected a string key");
            String k = string();
            ws();
            if (i >= s.length() || s.charAt(i) != ':') throw error("expected ':'");
            i++;
            ws();
            m.put(k, value());
            ws();
            if (i >= s.length()) throw error("unexpected end of input in object");
            char c = s.charAt(i++);
            if (c == '}') return m;
            if (c != ',') { i--; throw error("expected ',' or '}'"); }
        }
    }

    private List<Object> array() {
        List<Object> a = new ArrayList<>();
        i++;
        ws();
        if (i < s.length() && s.charAt(i) == ']') { i++; return a; }
        while (true) {
            ws();
            a.add(value());
            ws();
            if (i >= s.length()) throw error("unexpected end of input in array");
            char c = s.charAt(i++);
            if (c == ']') return a;
            if (c != ',') { i--; throw error("expected ',' or ']'"); }
        }
    }

    private String string() {
        i++; // opening quote
        StringBuilder b = null;
        int start = i;
        while (true) {
            if (i >= s.length()) throw error("unterminated string");
            char c = s.charAt(i);
            if (c == '"') {
                String r = b == null ? s.substring(start, i) : b.append(s, start, i).toString();
                i++;
                return r;
            }
            if (c == '\\') {
                if (b == null) b = new StringBuilder();
                b.append(s, start, i);
                i++;
                if (i >= s.length()) throw error("unterminated escape");
                char e = s.charAt(i++);
                switch (e) {
                    case '"' -> b.append('"');
                    case '\\' -> b.append('\\');
                    case '/' -> b.append('/');
                    case 'b' -> b.append('\b');
                    case 'f' -> b.append('\f');
                    case 'n' -> b.append('\n');
                    case 'r' -> b.append('\r');
                    case 't' -> b.append('\t');
                    case 'u' -> {
                        if (i + 4 > s.length()) throw error("short \\u escape");
                        try {
                            b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        } catch (NumberFormatException ex) {
                            throw error("bad \\u escape");
                        }
                        i += 4;
                    }
                    default -> throw error("bad escape \\" + e);
                }
                start = i;
            } else {
                if (c < 0x20) throw error("control character in string");
                i++;
            }
        }
    }

    private Object number() {
        int start = i;
        if (s.charAt(i) == '-') i++;
        boolean integral = true;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (c >= '0' && c <= '9') i++;
            else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') { integral = false; i++; }
            else break;
        }
        String t = s.substring(start, i);
        try {
            if (integral) {
                try {
                    return Long.parseLong(t);
                } catch (NumberFormatException big) {
                    return Double.parseDouble(t);
                }
            }
            return Double.parseDouble(t);
        } catch (NumberFormatException e) {
            i = start;
            throw error("bad number '" + t + "'");
        }
    }

    // ---- writing -----------------------------------------------------------------------------

    /** Writes a value (Map, List/array, String, Number, Boolean, null) as compact JSON. */
    public static String write(Object v) {
        StringBuilder b = new StringBuilder();
        write(b, v, -1, 0);
        return b.toString();
    }

    /** Writes a value as indented JSON (2 spaces). */
    public static String writePretty(Object v) {
        StringBuilder b = new StringBuilder();
        write(b, v, 2, 0);
        return b.append('\n').toString();
    }

    private static void newline(StringBuilder b, int indent, int depth) {
        if (indent < 0) return;
        b.append('\n');
        b.append(" ".repeat(indent * depth));
    }

    private static void write(StringBuilder b, Object v, int indent, int depth) {
        switch (v) {
            case null -> b.append("null");
            case String str -> quote(b, str);
            case Boolean bo -> b.append(bo);
            case Double d -> {
                if (d.isNaN() || d.isInfinite()) throw new IllegalArgumentException("JSON cannot hold " + d);
                b.append(d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString(d.longValue()) + ".0" : d.toString());
            }
            case Float f -> write(b, (double) f, indent, depth);
            case Number n -> b.append(n);
            case Map<?, ?> m -> {
                b.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    if (!first) b.append(',');
                    first = false;
                    newline(b, indent, depth + 1);
                    quote(b, String.valueOf(e.getKey()));
                    b.append(indent < 0 ? ":" : ": ");
                    write(b, e.getValue(), indent, depth + 1);
                }
                if (!m.isEmpty()) newline(b, indent, depth);
                b.append('}');
            }
            case List<?> l -> {
                b.append('[');
                for (int k = 0; k < l.size(); k++) {
                    if (k > 0) b.append(indent < 0 ? "," : ", ");
                    write(b, l.get(k), indent, depth + 1);
                }
                b.append(']');
            }
            case long[] la -> {
                b.append('[');
                for (int k = 0; k < la.length; k++) { if (k > 0) b.append(','); b.append(la[k]); }
                b.append(']');
            }
            case int[] ia -> {
                b.append('[');
                for (int k = 0; k < ia.length; k++) { if (k > 0) b.append(','); b.append(ia[k]); }
                b.append(']');
            }
            case Enum<?> en -> quote(b, en.toString());
            default -> throw new IllegalArgumentException("cannot write " + v.getClass().getName() + " as JSON");
        }
    }

    private static void quote(StringBuilder b, String s) {
        b.append('"');
        for (int k = 0; k < s.length(); k++) {
            char c = s.charAt(k);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                case '\b' -> b.append("\\b");
                case '\f' -> b.append("\\f");
                default -> {
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
                }
            }
        }
        b.append('"');
    }
}

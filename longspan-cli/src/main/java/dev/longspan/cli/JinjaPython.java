package dev.longspan.cli;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Python's meaning of what chat templates do at run time, where jinjava's Java meaning differs: the
 * str methods (an EL resolver), Jinja2's trim and transformers' tojson filters, what an expression
 * prints (py_str: Python's True / False, repr of lists and dicts), Python slices (py_slice), and
 * transformers' {@code {% generation %}} tag. Registered by {@link JinjaChatTemplate}. (Public:
 * jinjava calls the template functions by reflection.)
 */
public final class JinjaPython {
    private JinjaPython() {}

    /**
     * What an expression prints, as Jinja2 prints it where jinjava differs: a boolean as True / False,
     * a float as Python writes it, a list or a dict as Python's repr. (None stays empty: jinjava
     * does not tell None from an undefined variable, which Jinja2 prints as nothing.)
     */
    public static Object pyStr(Object value) {
        return value instanceof Boolean || value instanceof Double || value instanceof Float || value instanceof List<?> || value instanceof Map<?, ?>
                ? pyRepr(value) : value;
    }

    /** Python's repr of a template value (a str, number, bool, None, list or dict). */
    static String pyRepr(Object v) {
        return switch (v) {
            case null -> "None";
            case String str -> reprString(str);
            case Boolean b -> b ? "True" : "False";
            case Double d -> PythonJson.pythonFloat(d);
            case Float f -> PythonJson.pythonFloat(f);
            case List<?> l -> {
                StringBuilder b = new StringBuilder("[");
                for (int i = 0; i < l.size(); i++) b.append(i > 0 ? ", " : "").append(pyRepr(l.get(i)));
                yield b.append(']').toString();
            }
            case Map<?, ?> m -> {
                StringBuilder b = new StringBuilder("{");
                int i = 0;
                for (Map.Entry<?, ?> e : m.entrySet()) b.append(i++ > 0 ? ", " : "").append(pyRepr(e.getKey())).append(": ").append(pyRepr(e.getValue()));
                yield b.append('}').toString();
            }
            default -> v.toString();
        };
    }

    // Python's repr of a str: single quotes unless only double quotes avoid escaping, hex escapes for what is not printable
    private static String reprString(String s) {
        char q = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
        StringBuilder b = new StringBuilder(s.length() + 2).append(q);
        s.codePoints().forEach(cp -> {
            if (cp == q || cp == '\\') b.append('\\').appendCodePoint(cp);
            else if (cp == '\t') b.append("\\t");
            else if (cp == '\n') b.append("\\n");
            else if (cp == '\r') b.append("\\r");
            else if (cp != ' ' && !printable(cp)) b.append(cp < 0x100 ? String.format("\\x%02x", cp) : cp < 0x10000 ? String.format("\\u%04x", cp) : String.format("\\U%08x", cp));
            else b.appendCodePoint(cp);
        });
        return b.append(q).toString();
    }

    // Python's str.isprintable for one character: not a control, format, surrogate, private-use, unassigned or separator
    private static boolean printable(int cp) {
        return switch (Character.getType(cp)) {
            case Character.CONTROL, Character.FORMAT, Character.SURROGATE, Character.PRIVATE_USE, Character.UNASSIGNED,
                 Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR, Character.SPACE_SEPARATOR -> false;
            default -> true;
        };
    }

    /** Python's seq[start:stop:step] on a string or a list (null bounds: absent). */
    public static Object pySlice(Object seq, Object start, Object stop, Object step) {
        List<?> items = seq instanceof String str ? null : seq instanceof List<?> l ? l
                : seq instanceof Iterable<?> it ? toList(it) : null;
        if (items == null && !(seq instanceof String)) throw new IllegalArgumentException("cannot slice " + (seq == null ? "None" : seq.getClass().getSimpleName()));
        int n = items == null ? ((String) seq).length() : items.size();
        int st = step == null ? 1 : ((Number) step).intValue();
        if (st == 0) throw new IllegalArgumentException("slice step cannot be zero");
        int lo = st > 0 ? 0 : -1, hi = st > 0 ? n : n - 1;
        int a = start == null ? (st > 0 ? lo : hi) : clampIndex(((Number) start).intValue(), n, lo, hi);
        int z = stop == null ? (st > 0 ? hi : lo) : clampIndex(((Number) stop).intValue(), n, lo, hi);
        StringBuilder chars = items == null ? new StringBuilder() : null;
        List<Object> out = items == null ? null : new ArrayList<>();
        for (int i = a; st > 0 ? i < z : i > z; i += st) {
            if (items == null) chars.append(((String) seq).charAt(i));
            else out.add(items.get(i));
        }
        return items == null ? chars.toString() : out;
    }

    // Python's slice-index normalization: negative from the end, then clamped to [lo, hi]
    private static int clampIndex(int i, int n, int lo, int hi) {
        if (i < 0) i += n;
        return Math.max(lo, Math.min(hi, i));
    }

    private static List<Object> toList(Iterable<?> it) {
        List<Object> out = new ArrayList<>();
        for (Object o : it) out.add(o);
        return out;
    }


    /** Jinja2's trim: Python's strip (no-break spaces included), or of the given characters. */
    static final class PythonTrim implements Filter {
        @Override public String getName() { return "trim"; }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            if (var == null) return null;
            String chars = args.length > 0 ? args[0] : null;
            return PythonStrings.rstrip(PythonStrings.lstrip(var.toString(), chars), chars);
        }
    }

    /**
     * Hugging Face's tojson: Python's json.dumps with ensure_ascii off — ", " and ": " between items
     * (or "," and newlines with indent=N), keys in their order, non-ASCII characters as they are.
     */
    static final class PythonJson implements Filter {
        @Override public String getName() { return "tojson"; }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return filter(var, interpreter, args, Map.of());
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object indent = kwargs.containsKey("indent") ? kwargs.get("indent") : args.length > 0 ? args[0] : null;
            StringBuilder b = new StringBuilder();
            write(b, var, indent == null ? -1 : Integer.parseInt(indent.toString()), 0);
            return b.toString();
        }

        static void write(StringBuilder b, Object v, int indent, int depth) {
            if (v == null) b.append("null");
            else if (v instanceof Boolean x) b.append(x ? "true" : "false");
            else if (v instanceof Double || v instanceof Float) b.append(pythonFloat((Number) v));
            else if (v instanceof Number n) b.append(n);
            else if (v instanceof Map<?, ?> m) {
                b.append('{');
                int i = 0;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    separator(b, i++, indent, depth + 1);
                    string(b, String.valueOf(e.getKey()));
                    b.append(": ");
                    write(b, e.getValue(), indent, depth + 1);
                }
                if (i > 0 && indent >= 0) b.append('\n').append(" ".repeat(indent * depth));
                b.append('}');
            } else if (v instanceof Iterable<?> || v instanceof Object[]) {
                Iterable<?> items = v instanceof Object[] a ? List.of(a) : (Iterable<?>) v;
                b.append('[');
                int i = 0;
                for (Object o : items) {
                    separator(b, i++, indent, depth + 1);
                    write(b, o, indent, depth + 1);
                }
                if (i > 0 && indent >= 0) b.append('\n').append(" ".repeat(indent * depth));
                b.append(']');
            } else string(b, v.toString());
        }

        private static void separator(StringBuilder b, int i, int indent, int depth) {
            if (i > 0) b.append(indent >= 0 ? "," : ", ");
            if (indent >= 0) b.append('\n').append(" ".repeat(indent * depth));
        }

        // Python's float repr: the shortest digits that read back (as Java's), 1.0, 0.0001, 1e-05, 1e+16, NaN, Infinity
        static String pythonFloat(Number n) {
            // a float (jinjava's float filter gives one) by its own shortest digits, not its double's
            double d = n instanceof Float f ? Double.parseDouble(Float.toString(f)) : n.doubleValue();
            if (Double.isNaN(d)) return "NaN";
            if (Double.isInfinite(d)) return d > 0 ? "Infinity" : "-Infinity";
            if (d == 0) return 1 / d < 0 ? "-0.0" : "0.0";
            java.math.BigDecimal v = new java.math.BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
            String digits = v.unscaledValue().toString(), sign = d < 0 ? "-" : "";
            int exp = digits.length() - 1 - v.scale();
            if (exp < -4 || exp >= 16) {
                String mant = digits.length() > 1 ? digits.charAt(0) + "." + digits.substring(1) : digits;
                return sign + mant + "e" + (exp < 0 ? "-" : "+") + String.format(Locale.ROOT, "%02d", Math.abs(exp));
            }
            String plain = v.toPlainString();
            return sign + (plain.contains(".") ? plain : plain + ".0");
        }

        // a JSON string as json.dumps(ensure_ascii=False) writes it: the escapes of core's JSON writer, non-ASCII as is
        static void string(StringBuilder b, String s) {
            b.append(dev.longspan.io.Json.write(s));
        }
    }

    /**
     * Hugging Face's {% generation %} ... {% endgeneration %} (it marks the assistant's tokens for
     * training masks): the body is rendered as it is.
     */
    static final class GenerationTag implements Tag {
        @Override public String getName() { return "generation"; }

        @Override public String getEndTagName() { return "endgeneration"; }

        @Override
        public String interpret(TagNode tagNode, JinjavaInterpreter interpreter) {
            StringBuilder b = new StringBuilder();
            for (Node child : tagNode.getChildren()) b.append(child.render(interpreter).getValue());
            return b.toString();
        }
    }

    /** Python's str methods on strings; everything else as jinjava resolves it. */
    static final class PythonStrings extends ELResolver {
        private final ELResolver d;

        PythonStrings(ELResolver delegate) { this.d = delegate; }

        @Override
        public Object invoke(ELContext ctx, Object base, Object method, Class<?>[] types, Object[] params) {
            if (base instanceof String s && method instanceof String name) {
                Object r = python(s, name, params == null ? new Object[0] : params);
                if (r != NOT_PYTHON) {
                    ctx.setPropertyResolved(true);
                    return r;
                }
            }
            return d.invoke(ctx, base, method, types, params);
        }

        private static final Object NOT_PYTHON = new Object();

        static Object python(String s, String name, Object[] p) {
            String a = p.length > 0 && p[0] != null ? p[0].toString() : null;
            return switch (name) {
                case "startswith" -> p.length > 0 && anyOf(p[0], s::startsWith);
                case "endswith" -> p.length > 0 && anyOf(p[0], s::endsWith);
                case "join" -> p.length == 1 ? join(s, p[0]) : NOT_PYTHON;
                case "capitalize" -> s.isEmpty() ? s : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT);
                case "rfind" -> a == null ? -1 : s.lastIndexOf(a);
                case "index", "rindex" -> {
                    int at = a == null ? -1 : name.equals("index") ? s.indexOf(a) : s.lastIndexOf(a);
                    if (at < 0) throw new IllegalArgumentException("substring not found");
                    yield at;
                }
                case "splitlines" -> List.of(s.split("\\r\\n|[\\n\\r\\u000b\\f\\u001c\\u001d\\u001e\\u0085\\u2028\\u2029]", -1)).subList(0, lineCount(s));
                case "isdigit" -> !s.isEmpty() && s.chars().allMatch(Character::isDigit);
                case "isalpha" -> !s.isEmpty() && s.chars().allMatch(Character::isLetter);
                case "isalnum" -> !s.isEmpty() && s.chars().allMatch(Character::isLetterOrDigit);
                case "isspace" -> !s.isEmpty() && s.chars().allMatch(c -> isSpace((char) c));
                case "islower" -> s.chars().anyMatch(Character::isLowerCase) && s.chars().noneMatch(Character::isUpperCase);
                case "isupper" -> s.chars().anyMatch(Character::isUpperCase) && s.chars().noneMatch(Character::isLowerCase);
                case "strip" -> rstrip(lstrip(s, a), a);
                case "lstrip" -> lstrip(s, a);
                case "rstrip" -> rstrip(s, a);
                case "split" -> split(s, a, p.length > 1 ? ((Number) p[1]).intValue() : -1);
                case "rsplit" -> rsplit(s, a, p.length > 1 ? ((Number) p[1]).intValue() : -1);
                case "upper" -> s.toUpperCase(Locale.ROOT);
                case "lower" -> s.toLowerCase(Locale.ROOT);
                case "title" -> title(s);
                case "replace" -> p.length >= 2 ? s.replace(a, String.valueOf(p[1])) : NOT_PYTHON;
                case "find" -> a == null ? -1 : s.indexOf(a);
                case "count" -> a == null || a.isEmpty() ? s.length() + 1 : (s.length() - s.replace(a, "").length()) / a.length();
                case "format" -> format(s, p);
                default -> NOT_PYTHON;
            };
        }

        /**
         * Python's str.isspace for one character: Java's whitespace plus the no-break spaces
         * (U+00A0, U+2007, U+202F) and NEL (U+0085), which Java leaves out and Python's strip,
         * split and Jinja2's trim remove.
         */
        static boolean isSpace(char c) {
            return Character.isWhitespace(c) || c == '\u00a0' || c == '\u2007' || c == '\u202f' || c == '\u0085';
        }

        // chars null: Python's whitespace
        static String lstrip(String s, String chars) {
            int i = 0;
            while (i < s.length() && (chars == null ? isSpace(s.charAt(i)) : chars.indexOf(s.charAt(i)) >= 0)) i++;
            return s.substring(i);
        }

        static String rstrip(String s, String chars) {
            int i = s.length();
            while (i > 0 && (chars == null ? isSpace(s.charAt(i - 1)) : chars.indexOf(s.charAt(i - 1)) >= 0)) i--;
            return s.substring(0, i);
        }

        // Python's split: by a literal separator (all pieces kept), or by runs of whitespace (empty
        // pieces dropped); at most max splits from the left (max < 0: all), the rest left whole
        static List<String> split(String s, String sep, int max) {
            List<String> out = new ArrayList<>();
            if (sep == null) {
                int i = 0;
                while (i < s.length()) {
                    while (i < s.length() && isSpace(s.charAt(i))) i++;
                    if (i == s.length()) break;
                    if (max >= 0 && out.size() == max) { out.add(s.substring(i)); return out; }
                    int start = i;
                    while (i < s.length() && !isSpace(s.charAt(i))) i++;
                    out.add(s.substring(start, i));
                }
                return out;
            }
            if (sep.isEmpty()) throw new IllegalArgumentException("empty separator");
            int from = 0;
            for (int at; (max < 0 || out.size() < max) && (at = s.indexOf(sep, from)) >= 0; from = at + sep.length()) out.add(s.substring(from, at));
            out.add(s.substring(from));
            return out;
        }

        // Python's rsplit: as split, the splits counted from the right
        static List<String> rsplit(String s, String sep, int max) {
            if (max < 0) return split(s, sep, -1);
            List<String> out = new ArrayList<>();
            if (sep == null) {
                int i = s.length();
                while (i > 0) {
                    while (i > 0 && isSpace(s.charAt(i - 1))) i--;
                    if (i == 0) break;
                    if (out.size() == max) { out.add(0, s.substring(0, i)); return out; }
                    int end = i;
                    while (i > 0 && !isSpace(s.charAt(i - 1))) i--;
                    out.add(0, s.substring(i, end));
                }
                return out;
            }
            if (sep.isEmpty()) throw new IllegalArgumentException("empty separator");
            int to = s.length();
            for (int at; out.size() < max && (at = s.lastIndexOf(sep, to - sep.length())) >= 0 && to - sep.length() >= 0; to = at) out.add(0, s.substring(at + sep.length(), to));
            out.add(0, s.substring(0, to));
            return out;
        }

        // a prefix test against one string or any of a tuple (list) of them, as Python's startswith takes
        private static boolean anyOf(Object arg, java.util.function.Predicate<String> test) {
            if (arg instanceof Iterable<?> it) {
                for (Object o : it) if (o != null && test.test(o.toString())) return true;
                return false;
            }
            return arg != null && test.test(arg.toString());
        }

        // sep.join(items): the items of a list, or the characters of a string
        private static String join(String sep, Object items) {
            List<String> parts = new ArrayList<>();
            if (items instanceof String str) str.codePoints().forEach(cp -> parts.add(Character.toString(cp)));
            else if (items instanceof Iterable<?> it) for (Object o : it) {
                if (!(o instanceof String)) throw new IllegalArgumentException("sequence item " + parts.size() + ": expected str instance");
                parts.add((String) o);
            }
            else throw new IllegalArgumentException("can only join an iterable");
            return String.join(sep, parts);
        }

        // how many lines splitlines() gives: a final line break does not start an empty line
        private static int lineCount(String s) {
            if (s.isEmpty()) return 0;
            int n = s.split("\\r\\n|[\\n\\r\\u000b\\f\\u001c\\u001d\\u001e\\u0085\\u2028\\u2029]", -1).length;
            return s.matches("(?s).*(\\r\\n|[\\n\\r\\u000b\\f\\u001c\\u001d\\u001e\\u0085\\u2028\\u2029])") ? n - 1 : n;
        }

        /** Python's str.format with positional fields: {}, {0}, {{ and }} (a field's conversion or format spec is not supported). */
        static String format(String s, Object[] args) {
            StringBuilder b = new StringBuilder(s.length() + 16);
            int next = 0;
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                if ((c == '{' || c == '}') && i + 1 < s.length() && s.charAt(i + 1) == c) { b.append(c); i++; continue; }
                if (c == '}') throw new IllegalArgumentException("Single '}' encountered in format string");
                if (c != '{') { b.append(c); continue; }
                int end = s.indexOf('}', i);
                if (end < 0) throw new IllegalArgumentException("Single '{' encountered in format string");
                String field = s.substring(i + 1, end);
                int index;
                if (field.isEmpty()) index = next++;
                else if (field.chars().allMatch(Character::isDigit)) index = Integer.parseInt(field);
                else throw new IllegalArgumentException("str.format field {" + field + "} is not supported (only {} and {N})");
                if (index >= args.length) throw new IllegalArgumentException("Replacement index " + index + " out of range for positional args tuple");
                b.append(str(args[index]));
                i = end;
            }
            return b.toString();
        }

        // Python's str() of a template value
        static String str(Object o) {
            if (o == null) return "None";
            if (o instanceof Boolean v) return v ? "True" : "False";
            return o.toString();
        }

        static String title(String s) {
            StringBuilder b = new StringBuilder(s.length());
            boolean prevLetter = false;
            for (char c : s.toCharArray()) {
                b.append(prevLetter ? Character.toLowerCase(c) : Character.toUpperCase(c));
                prevLetter = Character.isLetter(c);
            }
            return b.toString();
        }

        /** s[i] on a string, negative i counting from the end as in Python; the rest as jinjava resolves it. */
        @Override
        public Object getValue(ELContext ctx, Object base, Object property) {
            // jinjava hands an integer subscript over as its decimal string
            if (base instanceof String str && (property instanceof Integer || property instanceof Long
                    || property instanceof String k && k.matches("-?[0-9]{1,9}"))) {
                int at = property instanceof Number n ? n.intValue() : Integer.parseInt((String) property);
                int i = at < 0 ? at + str.length() : at;
                ctx.setPropertyResolved(true);
                if (i < 0 || i >= str.length()) throw new IllegalArgumentException("string index out of range");
                return String.valueOf(str.charAt(i));
            }
            return d.getValue(ctx, base, property);
        }
        @Override public Class<?> getType(ELContext ctx, Object base, Object property) { return d.getType(ctx, base, property); }
        @Override public void setValue(ELContext ctx, Object base, Object property, Object value) { d.setValue(ctx, base, property, value); }
        @Override public boolean isReadOnly(ELContext ctx, Object base, Object property) { return d.isReadOnly(ctx, base, property); }
        @Override public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext ctx, Object base) { return d.getFeatureDescriptors(ctx, base); }
        @Override public Class<?> getCommonPropertyType(ELContext ctx, Object base) { return d.getCommonPropertyType(ctx, base); }
    }

    /**
     * Jinja2's {@code iterable} test: anything Python can iterate, strings and dicts included
     * (jinjava's is false for a string, so Llama 3.1's tool turns skipped their tojson).
     */
    static final class IsIterable implements com.hubspot.jinjava.lib.exptest.ExpTest {
        @Override public String getName() { return "iterable"; }

        @Override
        public boolean evaluate(Object var, JinjavaInterpreter interpreter, Object... args) {
            return var instanceof String || var instanceof Iterable<?> || var instanceof Map<?, ?> || var instanceof Object[];
        }
    }

    /** Jinja2's {@code sequence} test: something with a length and items by index or key (strings, lists, dicts). */
    static final class IsSequence implements com.hubspot.jinjava.lib.exptest.ExpTest {
        @Override public String getName() { return "sequence"; }

        @Override
        public boolean evaluate(Object var, JinjavaInterpreter interpreter, Object... args) {
            return var instanceof String || var instanceof List<?> || var instanceof Map<?, ?> || var instanceof Object[];
        }
    }
}

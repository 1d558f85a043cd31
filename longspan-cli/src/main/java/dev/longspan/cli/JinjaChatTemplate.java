package dev.longspan.cli;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;
import dev.longspan.model.ChatFormat;
import dev.longspan.format.ChatPrompts;
import dev.longspan.format.ModelLoader;
import dev.longspan.util.LongspanException;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A model's own chat template (Jinja, from tokenizer_config.json or GGUF tokenizer.chat_template)
 * rendered with jinjava the way Hugging Face's apply_chat_template renders it: trim_blocks and
 * lstrip_blocks, the variables messages, add_generation_prompt, bos_token and eos_token, and the
 * functions raise_exception and strftime_now.
 *
 * <p>Chat templates are written for Python's Jinja2, whose strings have Python's methods: calls
 * such as {@code content.startswith('x')}, {@code .split('</think>')[-1].lstrip('\n')} are given
 * Python's meaning here (jinjava would otherwise call Java's String methods, or none), and the
 * Python slice {@code xs[::-1]} becomes jinjava's {@code reverse} filter.
 */
public final class JinjaChatTemplate implements ChatFormat {
    private final String template, bosToken, eosToken, source;
    private final List<String> rawTexts = new ArrayList<>();
    private final Jinjava jinjava;

    JinjaChatTemplate(String template, String bosToken, String eosToken, String source) {
        this.template = translate(template, rawTexts);
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.source = source;
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true).withLstripBlocks(true)
                // a message's text is data: jinjava would otherwise render "{{ x }}" or "{% if %}" written in it
                .withNestedInterpretationEnabled(false)
                .withLegacyOverrides(LegacyOverrides.newBuilder().withUseNaturalOperatorPrecedence(true)
                        .withParseWhitespaceControlStrictly(true).withUseTrimmingForNotesAndExpressions(true)
                        .withKeepNullableLoopValues(true).withUsePyishObjectMapper(true).withIterateOverMapKeys(true).withHandleBackslashInQuotesOnly(true).build())
                .withElResolver(new PythonStrings(JinjavaConfig.newBuilder().build().getElResolver()))
                .build();
        jinjava = new Jinjava(config);
        try {
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                    JinjaChatTemplate.class.getDeclaredMethod("raiseException", String.class)));
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                    JinjaChatTemplate.class.getDeclaredMethod("strftimeNow", String.class)));
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "py_str",
                    JinjaChatTemplate.class.getDeclaredMethod("pyStr", Object.class)));
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "py_slice",
                    JinjaChatTemplate.class.getDeclaredMethod("pySlice", Object.class, Object.class, Object.class, Object.class)));
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(e);
        }
        jinjava.getGlobalContext().registerFilter(new PythonTrim());
        jinjava.getGlobalContext().registerFilter(new PythonJson());
        jinjava.getGlobalContext().registerTag(new GenerationTag());
    }

    /** The model's template when its files have one, else its family default (plain text when none). */
    static ChatFormat forModel(ModelLoader.LoadedModel lm) {
        ChatPrompts.Definition d = ChatPrompts.definition(lm);
        return d == null ? lm.chat() : new JinjaChatTemplate(d.template(), d.bosToken(), d.eosToken(), d.source());
    }

    @Override public String id() { return "jinja"; }

    /**
     * Template variables from a JSON object given on the command line (--chat-template-kwargs, as
     * llama.cpp's option of that name), e.g. {"enable_thinking": false}.
     */
    static Map<String, Object> variables(String json, String option) {
        if (json == null) return Map.of();
        Object v;
        try {
            v = new com.fasterxml.jackson.databind.ObjectMapper().readValue(json, Object.class);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new LongspanException(option + ": not JSON (" + e.getOriginalMessage() + ")");
        }
        if (!(v instanceof Map<?, ?> m)) throw new LongspanException(option + ": expected a JSON object, e.g. {\"enable_thinking\": false}");
        Map<String, Object> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (RESERVED.contains(e.getKey().toString())) throw new LongspanException(option + ": '" + e.getKey() + "' is set by Longspan and cannot be given");
            out.put(e.getKey().toString(), e.getValue());
        }
        return out;
    }

    /**
     * The conversation as the template renders it. A template that refuses a system turn or drops
     * its content (Gemma, Mistral v0.2, Phi-3 mini, ...) gets the system content in front of the
     * first user turn instead, as llama.cpp's chat templates do (Hugging Face would raise, or
     * silently lose the system prompt).
     */
    @Override
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, Map.of());
    }

    /** The names a template's caller sets itself, which extra variables may not replace. */
    public static final Set<String> RESERVED = Set.of("messages", "add_generation_prompt", "bos_token", "eos_token", "raise_exception", "strftime_now", "longspan_raw_texts");

    @Override
    public String render(List<Message> messages, boolean addGenerationPrompt, Map<String, Object> variables) {
        for (String k : variables.keySet()) {
            if (RESERVED.contains(k)) throw new LongspanException("chat template variable '" + k + "' is set by Longspan and cannot be given");
        }
        boolean system = messages.stream().anyMatch(m -> m.role().equals("system"));
        return renderAsIs(system && !showsSystemTurns() ? systemIntoUser(messages) : messages, addGenerationPrompt, variables);
    }

    private volatile Boolean systemTurns;

    // whether a system turn's content reaches the output (probed once, as llama.cpp probes a template's capabilities)
    private boolean showsSystemTurns() {
        if (systemTurns == null) {
            String needle = "<System Needle>";
            boolean shows;
            try {
                shows = renderAsIs(List.of(new Message("system", needle), new Message("user", "<User Needle>")), false, Map.of()).contains(needle);
            } catch (LongspanException e) {
                shows = false;
            }
            systemTurns = shows;
        }
        return systemTurns;
    }

    /** System contents (joined by newlines) put in front of the next user turn's, or as a user turn of their own. */
    static List<Message> systemIntoUser(List<Message> messages) {
        List<Message> out = new ArrayList<>();
        String pending = null;
        for (Message m : messages) {
            if (m.role().equals("system")) {
                pending = pending == null ? m.content() : pending + "\n" + m.content();
                continue;
            }
            if (pending != null && m.role().equals("user")) {
                m = new Message("user", m.content().isEmpty() ? pending : pending + "\n" + m.content());
            } else if (pending != null) {
                out.add(new Message("user", pending));
            }
            pending = null;
            out.add(m);
        }
        if (pending != null) out.add(new Message("user", pending));
        return out;
    }

    private String renderAsIs(List<Message> messages, boolean addGenerationPrompt, Map<String, Object> variables) {
        List<Map<String, Object>> ms = new ArrayList<>();
        for (Message m : messages) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("role", m.role());
            o.put("content", m.content());
            ms.add(o);
        }
        Map<String, Object> vars = new LinkedHashMap<>(variables);
        vars.put(RAW_TEXTS, rawTexts);
        vars.put("messages", ms);
        vars.put("add_generation_prompt", addGenerationPrompt);
        vars.put("bos_token", bosToken);
        vars.put("eos_token", eosToken);
        // templates ask "strftime_now is defined" (Llama 3.2) before calling it; jinjava's functions are not variables, so both functions are also defined as such
        vars.put("strftime_now", true);
        vars.put("raise_exception", true);
        RAISED.remove();
        RenderResult r = jinjava.renderForResult(template, vars);
        String raised = RAISED.get();
        RAISED.remove();
        if (raised != null) throw new LongspanException(source + ": the chat template refuses the conversation: " + raised);
        for (TemplateError e : r.getErrors()) {
            if (e.getSeverity() != TemplateError.ErrorType.FATAL) continue;
            throw new LongspanException(source + ": cannot render the chat template (line " + e.getLineno() + "): " + e.getMessage() + " (--raw feeds the prompt as is)");
        }
        return r.getOutput();
    }

    // ---- template functions -------------------------------------------------------------------

    // jinjava reports an exception thrown by a function without its message: the message goes here
    private static final ThreadLocal<String> RAISED = new ThreadLocal<>();

    /** Jinja2 templates call raise_exception(message) to refuse a conversation (e.g. roles out of order). */
    public static String raiseException(String message) {
        if (RAISED.get() == null) RAISED.set(message);
        throw new IllegalArgumentException(message);
    }

    /**
     * What an expression prints, as Jinja2 prints it where jinjava differs: a boolean as True / False,
     * a float as Python writes it, a list or a dict as Python's repr. (None stays empty: jinjava
     * does not tell None from an undefined variable, which Jinja2 prints as nothing.)
     */
    public static Object pyStr(Object value) {
        return switch (value) {
            case Boolean b -> b ? "True" : "False";
            case Double d -> PythonJson.pythonFloat(d);
            case Float f -> PythonJson.pythonFloat(Double.parseDouble(Float.toString(f)));   // jinjava's float filter gives a float: its own shortest digits
            case List<?> l -> pyRepr(l);
            case Map<?, ?> m -> pyRepr(m);
            case null, default -> value;
        };
    }

    /** Python's repr of a template value (a str, number, bool, None, list or dict). */
    static String pyRepr(Object v) {
        return switch (v) {
            case null -> "None";
            case String str -> reprString(str);
            case Boolean b -> b ? "True" : "False";
            case Double d -> PythonJson.pythonFloat(d);
            case Float f -> PythonJson.pythonFloat(Double.parseDouble(Float.toString(f)));   // jinjava's float filter gives a float: its own shortest digits
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

    /** Today's date in a strftime format (Llama 3.1+ templates write it into the system turn). */
    public static String strftimeNow(String format) {
        StringBuilder b = new StringBuilder();
        LocalDate d = LocalDate.now();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) { b.append(c); continue; }
            char f = format.charAt(++i);
            b.append(switch (f) {
                case 'd' -> String.format(Locale.ROOT, "%02d", d.getDayOfMonth());
                case 'm' -> String.format(Locale.ROOT, "%02d", d.getMonthValue());
                case 'Y' -> Integer.toString(d.getYear());
                case 'y' -> String.format(Locale.ROOT, "%02d", d.getYear() % 100);
                case 'b' -> d.format(DateTimeFormatter.ofPattern("MMM", Locale.ENGLISH));
                case 'B' -> d.format(DateTimeFormatter.ofPattern("MMMM", Locale.ENGLISH));
                case 'a' -> d.format(DateTimeFormatter.ofPattern("EEE", Locale.ENGLISH));
                case 'A' -> d.format(DateTimeFormatter.ofPattern("EEEE", Locale.ENGLISH));
                case '%' -> "%";
                default -> "%" + f;
            });
        }
        return b.toString();
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
            else if (v instanceof Double d) b.append(pythonFloat(d));
            else if (v instanceof Float f) b.append(pythonFloat(Double.parseDouble(Float.toString(f))));
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
        static String pythonFloat(double d) {
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

    // ---- Python-isms ----------------------------------------------------------------------------

    private static final Pattern REVERSE_SLICE = Pattern.compile("([A-Za-z_][A-Za-z0-9_.]*)\\[::-1\\]");

    private static final Pattern KWARG = Pattern.compile("(?s)\\s*([A-Za-z_][A-Za-z0-9_]*)\\s*=(?!=)(.*)");

    /**
     * Template source in jinjava's dialect: Python's reversing slice as the reverse filter, and each
     * keyword argument of namespace(...) in parentheses (jinjava's parser would otherwise read
     * {@code n=xs|length - 1} as {@code (n=xs|length) - 1}).
     */
    static String translate(String template) {
        return translate(template, new ArrayList<>());
    }

    /** The variable holding a template's {% raw %} texts. */
    static final String RAW_TEXTS = "longspan_raw_texts";   // also in RESERVED

    /**
     * As {@link #translate(String)}; each {% raw %} ... {% endraw %} becomes an expression printing its
     * text from {@link #RAW_TEXTS} (added to raws): jinjava ends a raw block only at a plain
     * "{% endraw %}", so Jinja2's whitespace control there would leak the rest of the template into it.
     * The text is cut as Jinja2 cuts it: "-" strips the whitespace beside a tag, trim_blocks the newline
     * after "endraw" (not after "raw"), lstrip_blocks the indentation before either.
     */
    static String translate(String template, List<String> raws) {
        StringBuilder out = new StringBuilder(template.length() + 64);
        Matcher m = RAW_BLOCK.matcher(template);
        int from = 0;
        while (m.find()) {
            String before = translateCode(template.substring(from, m.start()));
            boolean stripBefore = m.group(1) != null, stripAfter = m.group(5) != null;
            if (!stripBefore) before = before.replaceFirst("(^|\\n)[ \\t]+$", "$1");   // lstrip_blocks
            String text = m.group(3);
            if (m.group(2) != null) text = text.stripLeading();                      // (Jinja2's trim_blocks keeps a newline after "raw")
            if (m.group(4) != null) text = text.stripTrailing();
            else text = text.replaceFirst("(^|\\n)[ \\t]+$", "$1");                  // lstrip_blocks before endraw
            raws.add(text);
            out.append(before).append(stripBefore ? "{{- " : "{{ ").append(RAW_TEXTS).append('[').append(raws.size() - 1).append(']')
                    .append(stripAfter ? " -}}" : " }}");
            from = m.end();
            if (!stripAfter && template.startsWith("\n", from)) from++;                // trim_blocks after endraw
        }
        return out.append(translateCode(template.substring(from))).toString();
    }

    private static final Pattern RAW_BLOCK = Pattern.compile("(?s)\\{%(-)?\\s*raw\\s*(-)?%}(.*?)\\{%(-)?\\s*endraw\\s*(-)?%}");

    private static String translateCode(String template) {
        String t = REVERSE_SLICE.matcher(filteredLoops(elsesAndFilters(template))).replaceAll("($1|reverse)");
        StringBuilder b = new StringBuilder();
        int from = 0;
        for (int at; (at = t.indexOf("namespace(", from)) >= 0; ) {
            int open = at + "namespace(".length(), close = closing(t, open);
            if (close < 0) break;
            b.append(t, from, open);
            List<String> args = splitArgs(t.substring(open, close));
            for (int i = 0; i < args.size(); i++) {
                Matcher m = KWARG.matcher(args.get(i));
                b.append(i > 0 ? ", " : "").append(m.matches() ? m.group(1) + "=(" + m.group(2).strip() + ")" : args.get(i));
            }
            from = close;
        }
        return notBindsLoosely(inTags(b.append(t.substring(from)).toString(), (kind, code) -> {
            String c = slicesAsCalls(spacedForJinjava(INDENT_FIRST.matcher(code).replaceAll("$1indentfirst=")));
            // what an expression prints goes through py_str, so that a boolean prints as Python's True / False
            return kind == '{' && !c.isBlank() ? " py_str(" + c.strip() + ") " : c;
        }));
    }

    private static final Pattern BLOCK_TAG = Pattern.compile("(?s)\\{%(-?)\\s*([A-Za-z_]+)(.*?)\\s*(-?)%}");

    private static final Set<String> BLOCKS = Set.of("for", "if", "macro", "call", "filter", "generation", "block", "with", "autoescape");

    /**
     * Two Jinja2 block forms jinjava ignores, written with tags it runs: a loop's {@code {% else %}}
     * (rendered when the loop ran zero times: a namespace flag set in the body, an if after the loop)
     * and a {@code {% filter f %}} block (its body captured by a block set, then printed through f).
     * Each tag keeps its whitespace control where its text goes.
     */
    static String elsesAndFilters(String t) {
        if (!t.contains("else") && !t.contains("filter")) return t;
        // pass 1: the block tags, and which loop each else and end belongs to
        record Tag(int start, int end, String word, String l, String args, String r) {}
        List<Tag> tags = new ArrayList<>();
        for (int from = 0, at; (at = nextTag(t, from)) >= 0; ) {
            char kind = t.charAt(at + 1);
            int end = kind == '#' ? t.indexOf("#}", at + 2) : codeEnd(t, at + 2, kind == '%' ? "%}" : "}}");
            if (end < 0) break;
            Matcher m = BLOCK_TAG.matcher(t.substring(at, end + 2));
            if (kind == '%' && m.matches()) tags.add(new Tag(at, end + 2, m.group(2), m.group(1), m.group(3).strip(), m.group(4)));
            from = end + 2;
        }
        int[] opener = new int[tags.size()];          // else / end tag → index of its block's opening tag, or -1
        boolean[] hasElse = new boolean[tags.size()];  // for tags with a loop else
        java.util.Arrays.fill(opener, -1);
        java.util.ArrayDeque<Integer> open = new java.util.ArrayDeque<>();
        for (int i = 0; i < tags.size(); i++) {
            Tag g = tags.get(i);
            if (BLOCKS.contains(g.word) || g.word.equals("set") && !g.args.contains("=")) open.push(i);
            else if (g.word.equals("else") && !open.isEmpty() && tags.get(open.peek()).word.equals("for")) {
                opener[i] = open.peek();
                hasElse[open.peek()] = true;
            } else if (g.word.startsWith("end") && !open.isEmpty()) opener[i] = open.pop();
        }
        // pass 2: the rewritten tags
        StringBuilder out = new StringBuilder(t.length() + 128);
        int from = 0;
        for (int i = 0; i < tags.size(); i++) {
            Tag g = tags.get(i);
            String repl = null;
            int skip = 0;
            if (g.word.equals("for") && hasElse[i]) {
                repl = "{%" + g.l + " set longspan_for" + i + " = namespace(ran=false) %}{% for " + g.args + " %}{% set longspan_for" + i + ".ran = true " + g.r + "%}";
            } else if (g.word.equals("filter")) {
                repl = "{%" + g.l + " set longspan_filter" + i + " " + g.r + "%}";
            } else if (opener[i] >= 0) {
                Tag o = tags.get(opener[i]);
                if (g.word.equals("else")) repl = "{%" + g.l + " endfor %}{% if not longspan_for" + opener[i] + ".ran " + g.r + "%}";
                else if (o.word.equals("for") && hasElse[opener[i]]) repl = "{%" + g.l + " endif " + g.r + "%}";
                else if (o.word.equals("filter")) {
                    repl = "{%" + g.l + " endset %}{{ longspan_filter" + opener[i] + "|" + o.args + " " + g.r + "}}";
                    if (g.r.isEmpty() && t.startsWith("\n", g.end)) skip = 1;   // trim_blocks, as after the block tag it was
                }
            }
            if (repl == null) continue;
            out.append(t, from, g.start).append(repl);
            from = g.end + skip;
        }
        return out.append(t.substring(from)).toString();
    }

    // Jinja 3's indent(first=...) is jinjava's indentfirst
    private static final Pattern INDENT_FIRST = Pattern.compile("(\\bindent\\s*\\([^)]*?)\\bfirst\\s*=");

    private static final Pattern FOR_TAG = Pattern.compile(
            "(?s)\\{%(-?)\\s*for\\s+([A-Za-z_][A-Za-z0-9_]*(?:\\s*,\\s*[A-Za-z_][A-Za-z0-9_]*)*)\\s+in\\s+(.*?)\\s*(-?)%}");

    /**
     * Jinja2's filtered loop {@code {% for x in xs if cond %}}, which jinjava reads as a loop over
     * {@code (xs if cond)} and so runs zero times: the kept items are gathered first in a namespace
     * (cond sees the loop variables, tuples unpacked as the loop would), then the loop runs over them,
     * so loop.index, loop.last and loop.length count only the kept items, as in Jinja2. (The gathering
     * loop binds the loop's own names, which jinjava, unlike Jinja2, may leave set after it.)
     */
    static String filteredLoops(String t) {
        Matcher m = FOR_TAG.matcher(t);
        StringBuilder out = new StringBuilder(t.length() + 64);
        int from = 0, n = 0;
        while (m.find()) {
            String expr = m.group(3);
            int at = topLevelIf(expr);
            if (at < 0) continue;
            String items = expr.substring(0, at).strip(), cond = expr.substring(at + 2).strip();
            String ns = "longspan_loop" + n++, open = "{%" + m.group(1) + " ", target = m.group(2);
            out.append(t, from, m.start())
                    .append(open).append("set ").append(ns).append(" = namespace(items=[]) %}")
                    .append("{% for ").append(target).append(" in ").append(items).append(" %}")
                    .append("{% if ").append(cond).append(" %}{% set ").append(ns).append(".items = ").append(ns).append(".items + [")
                    .append(target.contains(",") ? "[" + target + "]" : target).append("] %}{% endif %}{% endfor %}")
                    .append("{% for ").append(m.group(2)).append(" in ").append(ns).append(".items ").append(m.group(4)).append("%}");
            from = m.end();
        }
        return out.append(t.substring(from)).toString();
    }

    // index of the keyword "if" at the top level of a for tag's iterable (outside brackets and strings), or -1
    private static int topLevelIf(String e) {
        int depth = 0;
        for (int i = 0; i < e.length(); i++) {
            char c = e.charAt(i);
            if (c == '\'' || c == '"') i = stringEnd(e, i);
            else if (c == '(' || c == '[' || c == '{') depth++;
            else if (c == ')' || c == ']' || c == '}') depth--;
            else if (depth == 0 && e.startsWith("if", i) && (i == 0 || !Character.isLetterOrDigit(e.charAt(i - 1)) && e.charAt(i - 1) != '_')
                    && (i + 2 == e.length() || !Character.isLetterOrDigit(e.charAt(i + 2)) && e.charAt(i + 2) != '_')) return i;
        }
        return -1;
    }

    /** The template with each tag's code (between its delimiters) passed through f; text and comments as they are. */
    static String inTags(String t, java.util.function.BiFunction<Character, String, String> f) {
        StringBuilder b = new StringBuilder(t.length() + 16);
        int i = 0;
        for (int open; (open = nextTag(t, i)) >= 0; ) {
            char kind = t.charAt(open + 1);
            String close = kind == '#' ? "#}" : kind == '%' ? "%}" : "}}";
            int start = open + 2, end = kind == '#' ? t.indexOf(close, start) : codeEnd(t, start, close);
            if (end < 0) break;
            if (kind != '#' && t.charAt(start) == '-') start++;
            int codeEnd = kind != '#' && end > start && t.charAt(end - 1) == '-' ? end - 1 : end;
            b.append(t, i, start).append(kind == '#' ? t.substring(start, codeEnd) : f.apply(kind, t.substring(start, codeEnd))).append(t, codeEnd, end + 2);
            i = end + 2;
        }
        return b.append(t.substring(i)).toString();
    }

    // copies the string literal that opens at code[i] to b; returns the index of its closing quote (or the last character)
    private static int copyString(String code, int i, StringBuilder b) {
        int j = Math.min(stringEnd(code, i), code.length() - 1);
        b.append(code, i, j + 1);
        return j;
    }

    // index of the quote closing the string literal that opens at t[i] (backslash escapes skipped); t.length() when unclosed
    private static int stringEnd(String t, int i) {
        char q = t.charAt(i);
        int j = i + 1;
        while (j < t.length() && t.charAt(j) != q) j += t.charAt(j) == '\\' ? 2 : 1;
        return Math.min(j, t.length());
    }

    // index of the closing delimiter of a tag whose code starts at from (string literals skipped), or -1
    // (as Jinja2's lexer, brackets opened inside the code are closed before a delimiter counts: {{ {'a': {'b': 1}} }})
    private static int codeEnd(String t, int from, String close) {
        int depth = 0;
        for (int i = from; i < t.length(); i++) {
            char c = t.charAt(i);
            if (c == '\'' || c == '"') {
                int j = stringEnd(t, i);
                i = j;
            } else if (depth == 0 && t.startsWith(close, i)) return i;
            else if (c == '(' || c == '[' || c == '{') depth++;
            else if ((c == ')' || c == ']' || c == '}') && depth > 0) depth--;
        }
        return -1;
    }

    /**
     * Spaces that jinjava's scanner needs where Jinja2's does not: after a binary plus written against
     * a number ({@code n+1}, {@code x +1}: jinjava reads {@code +1} as a signed number and then fails on
     * the expression), and between the braces of "}}" closing nested dicts inside a tag's code (jinjava
     * would end the tag there).
     */
    static String spacedForJinjava(String code) {
        StringBuilder b = new StringBuilder(code.length() + 8);
        for (int i = 0; i < code.length(); i++) {
            char c = code.charAt(i);
            if (c == '\'' || c == '"') {
                i = copyString(code, i, b);
                continue;
            }
            b.append(c);
            if (c == '}' && i + 1 < code.length() && code.charAt(i + 1) == '}') b.append(' ');
            if (c == '+' && i + 1 < code.length() && (Character.isDigit(code.charAt(i + 1)) || code.charAt(i + 1) == '.')) {
                int k = b.length() - 2;
                while (k >= 0 && b.charAt(k) == ' ') k--;
                char prev = k >= 0 ? b.charAt(k) : ' ';
                if (Character.isLetterOrDigit(prev) || prev == '_' || prev == ')' || prev == ']' || prev == '\'' || prev == '"') b.append(' ');
            }
        }
        return b.toString();
    }

    private static final Pattern SIMPLE_BOUND = Pattern.compile("\\s*-?\\s*[A-Za-z0-9_.]*\\s*");

    /**
     * Python slices jinjava's parser does not take — a stop that is an expression ({@code
     * messages[:ns.last + 1]}) or a step — as calls {@code py_slice(seq, start, stop, step)} with
     * Python's meaning. The sequence is the postfix chain just before the bracket (names, dots,
     * calls, subscripts, a string literal).
     */
    static String slicesAsCalls(String code) {
        StringBuilder b = new StringBuilder(code.length() + 16);
        for (int i = 0; i < code.length(); i++) {
            char c = code.charAt(i);
            if (c == '\'' || c == '"') {
                i = copyString(code, i, b);
                continue;
            }
            if (c == '[') {
                int close = matching(code, i);
                int operand = close < 0 ? -1 : operandStart(b);
                List<String> parts = close < 0 ? List.of() : topLevelSplit(code.substring(i + 1, close), ':');
                if (operand >= 0 && operand < b.length() && parts.size() >= 2
                        && (parts.size() == 3 || !SIMPLE_BOUND.matcher(parts.get(1)).matches())) {
                    String seq = b.substring(operand);
                    b.setLength(operand);
                    b.append("py_slice(").append(seq);
                    for (int k = 0; k < 3; k++) {
                        String part = k < parts.size() ? parts.get(k).strip() : "";
                        b.append(", ").append(part.isEmpty() ? "none" : slicesAsCalls(part));
                    }
                    b.append(')');
                    i = close;
                    continue;
                }
            }
            b.append(c);
        }
        return b.toString();
    }

    // index of the bracket closing the one at open (strings skipped), or -1
    private static int matching(String t, int open) {
        int depth = 0;
        for (int i = open; i < t.length(); i++) {
            char c = t.charAt(i);
            if (c == '\'' || c == '"') {
                int j = stringEnd(t, i);
                i = j;
            } else if (c == '(' || c == '[' || c == '{') depth++;
            else if ((c == ')' || c == ']' || c == '}') && --depth == 0) return i;
        }
        return -1;
    }

    // pieces of s split at top-level occurrences of sep (outside brackets and strings)
    private static List<String> topLevelSplit(String s, char sep) {
        List<String> out = new ArrayList<>();
        int depth = 0, start = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\'' || c == '"') {
                int j = stringEnd(s, i);
                i = j;
            } else if (c == '(' || c == '[' || c == '{') depth++;
            else if (c == ')' || c == ']' || c == '}') depth--;
            else if (c == sep && depth == 0) { out.add(s.substring(start, i)); start = i + 1; }
        }
        out.add(s.substring(start));
        return out;
    }

    // start of the postfix chain that ends b (names, dots, balanced brackets, a string literal), or -1 when b ends in none
    private static int operandStart(StringBuilder b) {
        int i = b.length();
        while (i > 0) {
            char c = b.charAt(i - 1);
            if (Character.isLetterOrDigit(c) || c == '_' || c == '.') { i--; continue; }
            if (c == ')' || c == ']') {
                int depth = 0, j = i - 1;
                for (; j >= 0; j--) {
                    char d = b.charAt(j);
                    if (d == ')' || d == ']') depth++;
                    else if ((d == '(' || d == '[') && --depth == 0) break;
                }
                if (j < 0) return -1;
                i = j;
                continue;
            }
            if ((c == '\'' || c == '"') && i == b.length()) {
                int j = b.lastIndexOf(String.valueOf(c), i - 2);
                if (j < 0) return -1;
                i = j;
                break;
            }
            break;
        }
        return i == b.length() ? -1 : i;
    }

    /**
     * Jinja2's unary {@code not} binds more loosely than comparisons, {@code in}, {@code is} tests and
     * filters ({@code not x is defined} is {@code not (x is defined)}); jinjava binds it to the next
     * operand alone, so DeepSeek's {@code {% if not add_generation_prompt is defined %}} would always
     * set the variable to false. Inside every tag, the operand of each unary not (up to the next
     * and / or / if / else, comma or closing bracket of its level) is put in parentheses. Text
     * outside tags, comments and string literals are copied as they are.
     */
    static String notBindsLoosely(String t) {
        StringBuilder b = new StringBuilder(t.length() + 16);
        int i = 0;
        while (i < t.length()) {
            int open = nextTag(t, i);
            if (open < 0) break;
            b.append(t, i, open + 2);
            i = open + 2;
            if (t.charAt(open + 1) == '#') {
                int end = t.indexOf("#}", i);
                end = end < 0 ? t.length() : end + 2;
                b.append(t, i, end);
                i = end;
                continue;
            }
            i = notsInCode(t, i, t.charAt(open + 1) == '%' ? '%' : '}', b);
        }
        return b.append(t.substring(i)).toString();
    }

    // the next "{{", "{%" or "{#" at or after from, or -1
    private static int nextTag(String t, int from) {
        for (int i = t.indexOf('{', from); i >= 0 && i + 1 < t.length(); i = t.indexOf('{', i + 1)) {
            char c = t.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') return i;
        }
        return -1;
    }

    private static final Set<String> NOT_ENDS = Set.of("and", "or", "if", "else");

    // copies a tag's code from i up to and including its closing "%}" / "}}" (end: '%' or '}'),
    // with each unary not's operand in parentheses; returns the index after the tag
    private static int notsInCode(String t, int i, char end, StringBuilder b) {
        int depth = 0;                                           // brackets open inside the tag
        ArrayDeque<Integer> nots = new ArrayDeque<>();   // depths of open "not ("
        String prev = "";
        while (i < t.length()) {
            char c = t.charAt(i);
            if (depth == 0 && c == end && i + 1 < t.length() && t.charAt(i + 1) == '}') break;
            if (depth == 0 && c == '-' && i + 2 < t.length() && t.charAt(i + 1) == end && t.charAt(i + 2) == '}') break;
            if (c == '\'' || c == '"') {
                int j = stringEnd(t, i);
                j = Math.min(j + 1, t.length());
                b.append(t, i, j);
                i = j;
                prev = "'";
                continue;
            }
            if (Character.isLetter(c) || c == '_') {
                int j = i;
                while (j < t.length() && (Character.isLetterOrDigit(t.charAt(j)) || t.charAt(j) == '_')) j++;
                String word = t.substring(i, j);
                if (NOT_ENDS.contains(word)) closeNots(nots, depth, b);
                if (word.equals("not") && !prev.equals("is") && !nextWordIs(t, j, "in")) {
                    b.append("not (");
                    nots.push(depth);
                } else {
                    b.append(word);
                }
                prev = word;
                i = j;
                continue;
            }
            if (c == ',') closeNots(nots, depth, b);
            if (c == ')' || c == ']' || c == '}') {
                closeNots(nots, depth, b);
                depth--;
            }
            if (c == '(' || c == '[' || c == '{') depth++;
            if (!Character.isWhitespace(c)) prev = String.valueOf(c);
            b.append(c);
            i++;
        }
        closeNots(nots, 0, b);
        int close = Math.min(t.length(), i + (i < t.length() && t.charAt(i) == '-' ? 3 : 2));
        b.append(t, i, close);
        return close;
    }

    // closes every "not (" opened at this bracket depth or deeper
    private static void closeNots(ArrayDeque<Integer> nots, int depth, StringBuilder b) {
        while (!nots.isEmpty() && nots.peek() >= depth) {
            nots.pop();
            b.append(')');
        }
    }

    private static boolean nextWordIs(String t, int from, String word) {
        int i = from;
        while (i < t.length() && Character.isWhitespace(t.charAt(i))) i++;
        return t.startsWith(word, i) && (i + word.length() == t.length() || !Character.isLetterOrDigit(t.charAt(i + word.length())) && t.charAt(i + word.length()) != '_');
    }

    // index of the ')' closing the call whose arguments start at open (quotes and brackets skipped), or -1
    private static int closing(String t, int open) {
        int depth = 0;
        for (int i = open; i < t.length(); i++) {
            char c = t.charAt(i);
            if (c == '\'' || c == '"') {
                int end = t.indexOf(c, i + 1);
                if (end < 0) return -1;
                i = end;
            } else if (c == '(' || c == '[' || c == '{') depth++;
            else if (c == ')' || c == ']' || c == '}') {
                if (depth == 0) return c == ')' ? i : -1;
                depth--;
            }
        }
        return -1;
    }

    // arguments split at top-level commas
    private static List<String> splitArgs(String args) {
        List<String> out = new ArrayList<>();
        int depth = 0, start = 0;
        for (int i = 0; i < args.length(); i++) {
            char c = args.charAt(i);
            if (c == '\'' || c == '"') i = args.indexOf(c, i + 1);
            else if (c == '(' || c == '[' || c == '{') depth++;
            else if (c == ')' || c == ']' || c == '}') depth--;
            else if (c == ',' && depth == 0) { out.add(args.substring(start, i)); start = i + 1; }
        }
        if (!args.isBlank()) out.add(args.substring(start));
        return out;
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
}

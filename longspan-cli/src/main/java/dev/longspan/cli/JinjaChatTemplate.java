package dev.longspan.cli;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
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
    private final Jinjava jinjava;

    JinjaChatTemplate(String template, String bosToken, String eosToken, String source) {
        this.template = translate(template);
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.source = source;
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true).withLstripBlocks(true)
                .withLegacyOverrides(LegacyOverrides.newBuilder().withUseNaturalOperatorPrecedence(true)
                        .withParseWhitespaceControlStrictly(true).withUseTrimmingForNotesAndExpressions(true)
                        .withKeepNullableLoopValues(true).build())
                .withElResolver(new PythonStrings(JinjavaConfig.newBuilder().build().getElResolver()))
                .build();
        jinjava = new Jinjava(config);
        try {
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                    JinjaChatTemplate.class.getDeclaredMethod("raiseException", String.class)));
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                    JinjaChatTemplate.class.getDeclaredMethod("strftimeNow", String.class)));
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The model's template when its files have one, else its family default (plain text when none). */
    static ChatFormat forModel(ModelLoader.LoadedModel lm) {
        ChatPrompts.Definition d = ChatPrompts.definition(lm);
        return d == null ? lm.chat() : new JinjaChatTemplate(d.template(), d.bosToken(), d.eosToken(), d.source());
    }

    @Override public String id() { return "jinja"; }

    /**
     * The conversation as the template renders it. A template that refuses a system turn or drops
     * its content (Gemma, Mistral v0.2, Phi-3 mini, ...) gets the system content in front of the
     * first user turn instead, as llama.cpp's chat templates do (Hugging Face would raise, or
     * silently lose the system prompt).
     */
    @Override
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        boolean system = messages.stream().anyMatch(m -> m.role().equals("system"));
        return renderAsIs(system && !showsSystemTurns() ? systemIntoUser(messages) : messages, addGenerationPrompt);
    }

    private volatile Boolean systemTurns;

    // whether a system turn's content reaches the output (probed once, as llama.cpp probes a template's capabilities)
    private boolean showsSystemTurns() {
        if (systemTurns == null) {
            String needle = "<System Needle>";
            boolean shows;
            try {
                shows = renderAsIs(List.of(new Message("system", needle), new Message("user", "<User Needle>")), false).contains(needle);
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

    private String renderAsIs(List<Message> messages, boolean addGenerationPrompt) {
        List<Map<String, Object>> ms = new ArrayList<>();
        for (Message m : messages) {
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("role", m.role());
            o.put("content", m.content());
            ms.add(o);
        }
        Map<String, Object> vars = new LinkedHashMap<>();
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

    // ---- Python-isms ----------------------------------------------------------------------------

    private static final Pattern REVERSE_SLICE = Pattern.compile("([A-Za-z_][A-Za-z0-9_.]*)\\[::-1\\]");

    private static final Pattern KWARG = Pattern.compile("(?s)\\s*([A-Za-z_][A-Za-z0-9_]*)\\s*=(?!=)(.*)");

    /**
     * Template source in jinjava's dialect: Python's reversing slice as the reverse filter, and each
     * keyword argument of namespace(...) in parentheses (jinjava's parser would otherwise read
     * {@code n=xs|length - 1} as {@code (n=xs|length) - 1}).
     */
    static String translate(String template) {
        String t = REVERSE_SLICE.matcher(template).replaceAll("($1|reverse)");
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
        return notBindsLoosely(b.append(t.substring(from)).toString());
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
                int j = i + 1;
                while (j < t.length() && t.charAt(j) != c) j += t.charAt(j) == '\\' ? 2 : 1;
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
                case "startswith" -> a != null && s.startsWith(a);
                case "endswith" -> a != null && s.endsWith(a);
                case "strip" -> rstrip(lstrip(s, a), a);
                case "lstrip" -> lstrip(s, a);
                case "rstrip" -> rstrip(s, a);
                case "split" -> split(s, a);
                case "upper" -> s.toUpperCase(Locale.ROOT);
                case "lower" -> s.toLowerCase(Locale.ROOT);
                case "title" -> title(s);
                case "replace" -> p.length >= 2 ? s.replace(a, String.valueOf(p[1])) : NOT_PYTHON;
                case "find" -> a == null ? -1 : s.indexOf(a);
                case "count" -> a == null || a.isEmpty() ? s.length() + 1 : (s.length() - s.replace(a, "").length()) / a.length();
                default -> NOT_PYTHON;
            };
        }

        // chars null: Python's whitespace
        static String lstrip(String s, String chars) {
            int i = 0;
            while (i < s.length() && (chars == null ? Character.isWhitespace(s.charAt(i)) : chars.indexOf(s.charAt(i)) >= 0)) i++;
            return s.substring(i);
        }

        static String rstrip(String s, String chars) {
            int i = s.length();
            while (i > 0 && (chars == null ? Character.isWhitespace(s.charAt(i - 1)) : chars.indexOf(s.charAt(i - 1)) >= 0)) i--;
            return s.substring(0, i);
        }

        // Python's split: by a literal separator (all pieces kept), or by runs of whitespace (empty pieces dropped)
        static List<String> split(String s, String sep) {
            List<String> out = new ArrayList<>();
            if (sep == null) {
                for (String w : s.strip().split("\\s+")) if (!w.isEmpty()) out.add(w);
                return out;
            }
            if (sep.isEmpty()) throw new IllegalArgumentException("empty separator");
            int from = 0;
            for (int at; (at = s.indexOf(sep, from)) >= 0; from = at + sep.length()) out.add(s.substring(from, at));
            out.add(s.substring(from));
            return out;
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

        @Override public Object getValue(ELContext ctx, Object base, Object property) { return d.getValue(ctx, base, property); }
        @Override public Class<?> getType(ELContext ctx, Object base, Object property) { return d.getType(ctx, base, property); }
        @Override public void setValue(ELContext ctx, Object base, Object property, Object value) { d.setValue(ctx, base, property, value); }
        @Override public boolean isReadOnly(ELContext ctx, Object base, Object property) { return d.isReadOnly(ctx, base, property); }
        @Override public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext ctx, Object base) { return d.getFeatureDescriptors(ctx, base); }
        @Override public Class<?> getCommonPropertyType(ELContext ctx, Object base) { return d.getCommonPropertyType(ctx, base); }
    }
}

package dev.longspan.cli;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A chat template's Jinja2 source in jinjava's dialect, translated once when the template is read.
 * Chat templates are Jinja2 code written against Python; where jinjava's parser reads a construct
 * differently (or not at all), the source is rewritten into one it runs the same way: Python slices,
 * {@code n+1}, unary not, {@code {% raw %}}, filtered loops, a loop's else, filter blocks, Jinja 3's
 * {@code indent(first=)}, and every {@code {{ }}} through {@code py_str} (Python's printing). Text
 * outside tags, comments and string literals are copied as they are. Run-time Python semantics
 * (string methods, tojson, trim, repr) are {@link JinjaPython}'s.
 */
final class JinjaSource {
    private JinjaSource() {}

    private static final Pattern REVERSE_SLICE = Pattern.compile("([A-Za-z_][A-Za-z0-9_.]*)\\[::-1\\]");

    private static final Pattern KWARG = Pattern.compile("(?s)\\s*([A-Za-z_][A-Za-z0-9_]*)\\s*=(?!=)(.*)");

    /**
     * Template source in jinjava's dialect: Python's reversing slice as the reverse filter, and each
     * keyword argument of namespace(...) in parentheses (jinjava's parser would otherwise read
     * {@code n=xs|length - 1} as {@code (n=xs|length) - 1}).
     */
    /** The variable holding a template's {% raw %} texts. */
    static final String RAW_TEXTS = "longspan_raw_texts";   // also in JinjaChatTemplate.RESERVED

    /**
     * As {@link #translate(String)}; each {% raw %} ... {% endraw %} becomes an expression printing its
     * text from {@link #RAW_TEXTS} (added to raws): jinjava ends a raw block only at a plain
     * "{% endraw %}", so Jinja2's whitespace control there would leak the rest of the template into it.
     * The text is cut as Jinja2 cuts it: "-" strips the whitespace beside a tag, trim_blocks the newline
     * after "endraw" (not after "raw"), lstrip_blocks the indentation before either.
     */
    static String translate(String source, List<String> raws) {
        // Jinja2's lexer first: every line break becomes "\n" and one final line break is dropped (keep_trailing_newline off)
        String template = source.replace("\r\n", "\n").replace('\r', '\n');
        if (template.endsWith("\n")) template = template.substring(0, template.length() - 1);
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
        String t = REVERSE_SLICE.matcher(filteredLoops(elsesAndFilters(commentsAsBarriers(template)))).replaceAll("($1|reverse)");
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

    /**
     * Comments with Jinja2's whitespace rules, as empty expressions: jinjava drops a comment while
     * parsing, so the text on both sides merges and a later {@code {%-} strips across it. Jinja2 treats a
     * comment like a block tag: lstrip_blocks takes the indentation before it, trim_blocks the newline
     * after it, and "-" the whitespace beside it; an empty {@code {{ '' }}} in its place keeps the text
     * on its two sides apart.
     */
    static String commentsAsBarriers(String t) {
        if (!t.contains("{#")) return t;
        StringBuilder out = new StringBuilder(t.length());
        int from = 0;
        for (int at; (at = nextTag(t, from)) >= 0; ) {
            char kind = t.charAt(at + 1);
            int end = tagEnd(t, at);
            if (end < 0) break;
            if (kind != '#') {
                out.append(t, from, end + 2);
                from = end + 2;
                continue;
            }
            boolean stripBefore = at + 2 < t.length() && t.charAt(at + 2) == '-', stripAfter = end > at + 2 && t.charAt(end - 1) == '-';
            String before = t.substring(from, at);
            if (!stripBefore) {
                // lstrip_blocks: spaces and tabs between a line's start and the comment go
                int k = before.length();
                while (k > 0 && (before.charAt(k - 1) == ' ' || before.charAt(k - 1) == '\t')) k--;
                boolean lineStart = k == 0 ? out.isEmpty() || out.charAt(out.length() - 1) == '\n' : before.charAt(k - 1) == '\n';
                if (lineStart) before = before.substring(0, k);
            }
            out.append(before).append(stripBefore ? "{{- '' " : "{{ '' ").append(stripAfter ? "-}}" : "}}");
            from = end + 2;
            if (!stripAfter && t.startsWith("\n", from)) from++;   // trim_blocks
        }
        return out.append(t.substring(from)).toString();
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
        if (!t.contains("else") && !t.contains("filter") && !t.contains("loop.previtem") && !t.contains("loop.nextitem")) return t;
        // pass 1: the tags; which block each else and end closes; the loop each tag sits in
        record Tag(int start, int end, String word, String l, String args, String r) {}
        List<Tag> tags = new ArrayList<>();
        for (int from = 0, at; (at = nextTag(t, from)) >= 0; ) {
            char kind = t.charAt(at + 1);
            int end = tagEnd(t, at);
            if (end < 0) break;
            Matcher m = BLOCK_TAG.matcher(t.substring(at, end + 2));
            if (kind == '%' && m.matches()) tags.add(new Tag(at, end + 2, m.group(2), m.group(1), m.group(3).strip(), m.group(4)));
            else if (kind == '{') tags.add(new Tag(at, end + 2, "", "", "", ""));
            from = end + 2;
        }
        int[] opener = new int[tags.size()];          // else / end tag → index of its block's opening tag, or -1
        int[] loopOf = new int[tags.size()];          // the innermost loop a tag sits in, or -1
        boolean[] hasElse = new boolean[tags.size()];  // for tags with a loop else
        boolean[] neighbours = new boolean[tags.size()];   // for tags whose body reads loop.previtem / loop.nextitem
        java.util.Arrays.fill(opener, -1);
        java.util.ArrayDeque<Integer> open = new java.util.ArrayDeque<>();
        for (int i = 0; i < tags.size(); i++) {
            Tag g = tags.get(i);
            loopOf[i] = -1;
            for (int o : open) if (tags.get(o).word.equals("for")) { loopOf[i] = o; break; }
            String text = t.substring(g.start, g.end);
            if (loopOf[i] >= 0 && (text.contains("loop.previtem") || text.contains("loop.nextitem"))) neighbours[loopOf[i]] = true;
            if (BLOCKS.contains(g.word) || g.word.equals("set") && !g.args.contains("=")) open.push(i);
            else if (g.word.equals("else") && !open.isEmpty() && tags.get(open.peek()).word.equals("for")) {
                opener[i] = open.peek();
                hasElse[open.peek()] = true;
            } else if (g.word.startsWith("end") && !open.isEmpty()) opener[i] = open.pop();
        }
        // pass 2: the rewritten tags
        StringBuilder out = new StringBuilder(t.length() + 128);
        boolean[] listed = new boolean[tags.size()];   // loops whose items are now in a list named after them
        int from = 0;
        for (int i = 0; i < tags.size(); i++) {
            Tag g = tags.get(i);
            String repl = null, before = "";
            int skip = 0;
            String args = g.args;
            if (g.word.equals("for") && neighbours[i]) {
                // Jinja2's loop.previtem / loop.nextitem, which jinjava lacks: the items in a list, read around loop.index0
                Matcher f = LOOP_ARGS.matcher(g.args);
                if (f.matches() && topLevelIf(f.group(2)) < 0) {
                    before = "{%" + g.l + " set longspan_items" + i + " = (" + f.group(2) + ")|list %}";
                    args = f.group(1) + " in longspan_items" + i;
                    repl = before + "{% for " + args + " " + g.r + "%}";
                    listed[i] = true;
                }
            }
            if (g.word.equals("for") && hasElse[i]) {
                repl = (before.isEmpty() ? "{%" + g.l + " " : before + "{% ") + "set longspan_for" + i + " = namespace(ran=false) %}{% for " + args
                        + " %}{% set longspan_for" + i + ".ran = true " + g.r + "%}";
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
            } else if (loopOf[i] >= 0 && listed[loopOf[i]]) {
                String items = "longspan_items" + loopOf[i], text = t.substring(g.start, g.end);
                String swapped = text.replace("loop.previtem", "(" + items + "[loop.index0 - 1] if loop.index0 > 0 else none)")
                        .replace("loop.nextitem", "(" + items + "[loop.index0 + 1] if not loop.last else none)");
                if (!swapped.equals(text)) repl = swapped;
            }
            if (repl == null) continue;
            out.append(t, from, g.start).append(repl);
            from = g.end + skip;
        }
        return out.append(t.substring(from)).toString();
    }

    private static final Pattern LOOP_ARGS = Pattern.compile("(?s)([A-Za-z_][A-Za-z0-9_]*(?:\\s*,\\s*[A-Za-z_][A-Za-z0-9_]*)*)\\s+in\\s+(.*)");

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
            int start = open + 2, end = tagEnd(t, open);
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

    // index of the closing delimiter of the tag (comment, statement or expression) that opens at t[open], or -1
    private static int tagEnd(String t, int open) {
        char kind = t.charAt(open + 1);
        return kind == '#' ? t.indexOf("#}", open + 2) : codeEnd(t, open + 2, kind == '%' ? "%}" : "}}");
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
}

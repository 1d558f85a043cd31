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

import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * A model's own chat template (Jinja, from tokenizer_config.json or GGUF tokenizer.chat_template)
 * rendered with jinjava the way Hugging Face's apply_chat_template renders it: trim_blocks and
 * lstrip_blocks, the variables messages, add_generation_prompt, bos_token and eos_token (and any
 * chat_template_kwargs), and the functions raise_exception and strftime_now.
 *
 * <p>Chat templates are written for Python's Jinja2: the source is translated once into jinjava's
 * dialect ({@link JinjaSource}) and runs with Python's meaning of strings, filters and printing
 * ({@link JinjaPython}). Checked against Jinja2 itself (scripts/compare-chat-templates-vs-jinja2.sh)
 * and llama.cpp's test vectors (scripts/compare-chat-templates-vs-llamacpp-tests.sh).
 */
public final class JinjaChatTemplate implements ChatFormat {
    private final String template, bosToken, eosToken, source;
    private final List<String> rawTexts = new ArrayList<>();
    private final Jinjava jinjava;

    JinjaChatTemplate(String template, String bosToken, String eosToken, String source) {
        this.template = JinjaSource.translate(template, rawTexts);
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.source = source;
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true).withLstripBlocks(true)
                // a message's text is data: jinjava would otherwise render "{{ x }}" or "{% if %}" written in it
                .withNestedInterpretationEnabled(false)
                // bounds for a template in a model file: Jinja2's sandbox range limit (jinjava's own, 1,000,
                // cut longer ranges short silently) and a ceiling on what a render may build
                .withRangeLimit(100_000).withMaxStringLength(1L << 27).withMaxOutputSize(1L << 28)
                // macros may call themselves, as in Jinja2 (templates render nested JSON schemas so); jinjava refuses by default
                .withEnableRecursiveMacroCalls(true).withMaxMacroRecursionDepth(200)
                .withLegacyOverrides(LegacyOverrides.newBuilder().withUseNaturalOperatorPrecedence(true)
                        .withParseWhitespaceControlStrictly(true).withUseTrimmingForNotesAndExpressions(true)
                        .withKeepNullableLoopValues(true).withUsePyishObjectMapper(true).withIterateOverMapKeys(true).withHandleBackslashInQuotesOnly(true).build())
                .withElResolver(new JinjaPython.PythonStrings(JinjavaConfig.newBuilder().build().getElResolver()))
                .build();
        jinjava = new Jinjava(config);
        try {
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                    JinjaChatTemplate.class.getDeclaredMethod("raiseException", String.class)));
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                    JinjaChatTemplate.class.getDeclaredMethod("strftimeNow", String.class)));
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "py_str",
                    JinjaPython.class.getDeclaredMethod("pyStr", Object.class)));
            jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "py_slice",
                    JinjaPython.class.getDeclaredMethod("pySlice", Object.class, Object.class, Object.class, Object.class)));
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(e);
        }
        jinjava.getGlobalContext().registerFilter(new JinjaPython.PythonTrim());
        jinjava.getGlobalContext().registerFilter(new JinjaPython.PythonJson());
        jinjava.getGlobalContext().registerTag(new JinjaPython.GenerationTag());
        jinjava.getGlobalContext().registerExpTest(new JinjaPython.IsIterable());
        jinjava.getGlobalContext().registerExpTest(new JinjaPython.IsSequence());
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
    public static final Set<String> RESERVED = Set.of("messages", "add_generation_prompt", "bos_token", "eos_token", "raise_exception", "strftime_now", JinjaSource.RAW_TEXTS);

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
        vars.put(JinjaSource.RAW_TEXTS, rawTexts);
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
            // jinjava only warns when a macro recursed past the limit, and renders nothing for it: Jinja2 raises
            boolean recursion = e.getMessage() != null && e.getMessage().startsWith("Max recursion limit");
            if (e.getSeverity() != TemplateError.ErrorType.FATAL && !recursion) continue;
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

}

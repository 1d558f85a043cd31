package dev.longspan.cli;

import static dev.longspan.cli.CliRun.shared;
import dev.longspan.io.Json;
import dev.longspan.model.ChatFormat.Message;
import dev.longspan.model.ChatTemplate;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The real Qwen3 and Llama 3 chat templates rendered by jinjava; the expected strings follow the
 * templates' code by hand (comments say which branch gives what).
 */
class JinjaChatTemplateTest {
    static JinjaChatTemplate template(String family) throws Exception {
        Path cfg = shared("tokenizers/" + family + "/tokenizer_config.json");
        Map<String, Object> json = Json.parseObject(Files.readString(cfg), cfg.toString());
        String bos = json.get("bos_token") instanceof String s ? s : "", eos = json.get("eos_token") instanceof String s ? s : "";
        return new JinjaChatTemplate((String) json.get("chat_template"), bos, eos, cfg.toString());
    }

    static Message m(String role, String content) { return new Message(role, content); }

    @Test
    void qwen3SystemUserAssistantTurnsAndTheGenerationPrompt() throws Exception {
        // system first: its own block; the earlier assistant turn precedes the last user query, so no <think> block
        assertThat(template("qwen3").render(List.of(m("system", "You are helpful."), m("user", "Hi"), m("assistant", "Hello!"),
                m("user", "How are you?")), true)).isEqualTo(
                "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
                        + "<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n");
        assertThat(template("qwen3").render(List.of(m("user", "Hi")), false)).isEqualTo("<|im_start|>user\nHi<|im_end|>\n");
    }

    @Test
    void qwen3SplitsReasoningOffAssistantTurns() throws Exception {
        // the last assistant turn after the last query keeps its reasoning, re-wrapped in <think> ... </think>
        assertThat(template("qwen3").render(List.of(m("user", "2+2?"), m("assistant", "<think>\nadd\n</think>\n\n4")), false))
                .isEqualTo("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nadd\n</think>\n\n4<|im_end|>\n");
        // an assistant turn before the last query loses its reasoning: split('</think>')[-1].lstrip('\n')
        assertThat(template("qwen3").render(List.of(m("user", "a"), m("assistant", "<think>x</think>\nb"), m("user", "c")), true))
                .isEqualTo("<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n<|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\n");
        // a user turn that is a tool response does not count as the last query (messages[::-1] scan)
        assertThat(template("qwen3").render(List.of(m("user", "q"), m("assistant", "<think>r</think>a"), m("user", "<tool_response>t</tool_response>")), false))
                .isEqualTo("<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</think>\n\na<|im_end|>\n"
                        + "<|im_start|>user\n<tool_response>t</tool_response><|im_end|>\n");
    }

    @Test
    void llama3WritesBosFirstTrimsContentsAndAlwaysOpensTheAssistantTurn() throws Exception {
        String expected = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
        JinjaChatTemplate t = template("llama3");
        assertThat(t.render(List.of(m("system", "Be brief."), m("user", " Hi there \n")), true)).isEqualTo(expected);
        // this template ignores add_generation_prompt
        assertThat(t.render(List.of(m("system", "Be brief."), m("user", " Hi there \n")), false)).isEqualTo(expected);
        assertThat(t.render(List.of(m("user", "x"), m("assistant", "y")), true)).isEqualTo("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\ny<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    }

    @Test
    void raiseExceptionRefusesTheConversationWithTheTemplatesMessage() {
        JinjaChatTemplate t = new JinjaChatTemplate("{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation roles must start with user') }}{% endif %}"
                + "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}", "", "", "t.json");
        assertThat(t.render(List.of(m("user", "hi")), true)).isEqualTo("user: hi\n");
        assertThatThrownBy(() -> t.render(List.of(m("assistant", "hi")), true)).isInstanceOf(LongspanException.class)
                .hasMessageContaining("t.json").hasMessageContaining("Conversation roles must start with user");
    }

    @Test
    void templateVariablesAndPythonStringMethods() {
        JinjaChatTemplate t = new JinjaChatTemplate("{{ bos_token }}{% for message in messages %}[{{ message.content.strip() }}|{{ message.content.split(',')|length }}"
                + "|{{ message.content.startswith(' a') }}|{{ message.content.replace('a', 'b') }}]{% endfor %}{% if add_generation_prompt %}{{ eos_token }}{% endif %}",
                "<s>", "</s>", "t");
        assertThat(t.render(List.of(m("user", " a,b.c ")), true)).isEqualTo("<s>[a,b.c|2|True| b,b.c ]</s>");
        assertThat(t.render(List.of(m("user", "x")), false)).isEqualTo("<s>[x|1|False|x]");
    }

    @Test
    void aTemplateJinjavaCannotRenderFailsWithOneClearLine() {
        JinjaChatTemplate t = new JinjaChatTemplate("{{ messages[0].content.nosuchmethod() }}", "", "", "bad.json");
        assertThatThrownBy(() -> t.render(List.of(m("user", "x")), true)).isInstanceOf(LongspanException.class)
                .hasMessageContaining("bad.json").hasMessageContaining("cannot render");
    }

    @Test
    void familyDefaultsRenderEveryTurnWhenAModelHasNoTemplate() {
        List<Message> conv = List.of(m("system", "S"), m("user", "U"));
        assertThat(ChatTemplate.CHATML.render(conv, true)).isEqualTo("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
        assertThat(ChatTemplate.LLAMA3.render(conv, true)).isEqualTo("<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
        assertThat(ChatTemplate.LLAMA2.render(conv, true)).isEqualTo("[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST]");
        assertThat(ChatTemplate.NONE.render(List.of(m("user", "U")), true)).isEqualTo("U");
    }

    /**
     * Jinja2's unary not binds more loosely than is-tests, in, comparisons and filters. The expected
     * values are Jinja2 3.1's (rendered with x = 1, s = 'abc', m = {'k': 'v'}).
     */
    @ParameterizedTest
    @CsvSource(delimiter = '#', quoteCharacter = '"', value = {
            "not x is defined#false", "not y is defined#true", "not x is none#true", "not x is not none#false",
            "not 'a' in s#false", "not 'z' in s#true", "not x == 1#false", "not x != 1#true", "not x > 0#false",
            "x is defined and not y is defined#true", "not m['k'] is defined#false", "not x in [1, 2]#false",
            "x not in [1, 2]#false", "1 if not x is defined else 2#2", "x == 1 and not x is none#true",
            "not [1]|length > 1#true", "not not x#true", "not (x is defined)#false", "[not x is none, not y is defined]#[true, true]",
            "'not x is defined'#not x is defined", "notes is defined#false", "not loopx is defined or x == 1#true"})
    void unaryNotBindsAsInJinja2(String expr, String expected) {
        JinjaChatTemplate t = new JinjaChatTemplate("{% set x = 1 %}{% set s = 'abc' %}{% set m = {'k': 'v'} %}{# not x is y #}{{ (" + expr + ") }}", "", "", "t");
        assertThat(t.render(List.of(), false).toLowerCase(java.util.Locale.ROOT)).isEqualTo(expected);
    }

    @Test
    void deepSeekStyleDefaultsKeepTheGenerationPrompt() {
        // DeepSeek's templates (V2, coder, R1) open with this guard; read as (not x) is defined it would drop the prompt
        JinjaChatTemplate t = new JinjaChatTemplate("{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
                + "{% for message in messages %}User: {{ message['content'] }}\n\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}", "", "", "t");
        assertThat(t.render(List.of(m("user", "Hi")), true)).isEqualTo("User: Hi\n\nAssistant:");
        assertThat(t.render(List.of(m("user", "Hi")), false)).isEqualTo("User: Hi\n\n");
        // text outside the tags is left alone
        assertThat(new JinjaChatTemplate("not a is b {{ 'x' }}", "", "", "t").render(List.of(), false)).isEqualTo("not a is b x");
    }

    @Test
    void strftimeNowIsDefinedForTemplatesThatAsk() {
        // Llama 3.2's template falls back to a fixed date when strftime_now is not defined
        JinjaChatTemplate t = new JinjaChatTemplate("{% if strftime_now is defined %}{{ strftime_now('%Y') }}{% else %}26 Jul 2024{% endif %}", "", "", "t");
        assertThat(t.render(List.of(), false)).isEqualTo(Integer.toString(java.time.LocalDate.now().getYear()));
    }

    @Test
    void templatesWithoutASystemTurnGetTheSystemContentInTheFirstUserTurn() {
        List<Message> conv = List.of(m("system", "Be brief."), m("user", "Hi"), m("assistant", "Hello"), m("user", "Bye"));
        // refuses a system turn (Gemma's template)
        JinjaChatTemplate refuses = new JinjaChatTemplate("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
                + "{% for message in messages %}<{{ message['role'] }}>{{ message['content'] }}{% endfor %}", "", "", "t");
        assertThat(refuses.render(conv, false)).isEqualTo("<user>Be brief.\nHi<assistant>Hello<user>Bye");
        // drops it silently (Phi-3 mini's template)
        JinjaChatTemplate drops = new JinjaChatTemplate("{% for message in messages %}{% if message['role'] != 'system' %}<{{ message['role'] }}>"
                + "{{ message['content'] }}{% endif %}{% endfor %}", "", "", "t");
        assertThat(drops.render(conv, false)).isEqualTo("<user>Be brief.\nHi<assistant>Hello<user>Bye");
        // a template with system turns renders them as they are
        JinjaChatTemplate shows = new JinjaChatTemplate("{% for message in messages %}<{{ message['role'] }}>{{ message['content'] }}{% endfor %}", "", "", "t");
        assertThat(shows.render(conv, false)).isEqualTo("<system>Be brief.<user>Hi<assistant>Hello<user>Bye");
        // two system turns join; a system turn before an assistant turn becomes a user turn of its own
        assertThat(JinjaChatTemplate.systemIntoUser(List.of(m("system", "a"), m("system", "b"), m("assistant", "c"), m("system", "d"))))
                .containsExactly(m("user", "a\nb"), m("assistant", "c"), m("user", "d"));
    }

    // The cases below were found rendering 65 real chat templates (llama.cpp's models/templates) with
    // random conversations beside Python's Jinja2 set up as transformers' apply_chat_template sets it
    // up (scripts/compare-chat-templates-vs-jinja2.sh); the expected strings are Jinja2 3.1's.

    @Test
    void aMessagesTextIsDataNotTemplateCode() throws Exception {
        // jinjava's nested interpretation rendered "{{ x }}" inside a message (to nothing) and failed on "{% if %}"
        assertThat(template("qwen3").render(List.of(m("user", "write {{ x }} and {% if %} literally")), true))
                .isEqualTo("<|im_start|>user\nwrite {{ x }} and {% if %} literally<|im_end|>\n<|im_start|>assistant\n");
    }

    @Test
    void whitespaceIsPythonsForTrimStripAndSplit() throws Exception {
        // Python's strip and Jinja2's trim remove U+00A0, U+2007, U+202F and U+0085; Java's isWhitespace does not
        assertThat(template("llama3").render(List.of(m("user", "\u00a0 Hi\u202f\u0085")), true))
                .isEqualTo("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
        JinjaChatTemplate t = new JinjaChatTemplate("{{ messages[0].content.strip() }}|{{ messages[0].content.split()|join(',') }}", "", "", "t");
        assertThat(t.render(List.of(m("user", "\u00a0a\u2007b\u00a0")), false)).isEqualTo("a\u2007b|a,b");
        JinjaChatTemplate lines = new JinjaChatTemplate("{{ messages[0].content.splitlines()|join('/') }}", "", "", "t");
        assertThat(lines.render(List.of(m("user", "a\rb\r\n\nc\u2028d\n")), false)).isEqualTo("a/b//c/d");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '#', quoteCharacter = '"', value = {
            "'<{}|{}>'.format(1, 'x')#<1|x>", "'{1}{0}{{}}'.format('a', 'b')#ba{}",
            "'a,b,,c'.split(',', 2)|join('/')#a/b/,c", "' a b  c '.split(none, 1)|join('/')#\"a/b  c \"",
            "'a,b,,c'.rsplit(',', 1)|join('/')#a,b,/c", "' a b  c '.rsplit(none, 1)|join('/')#\" a b/c\"",
            "', '.join(['a', 'b'])#a, b", "'abc'.capitalize()#Abc", "'abcb'.rfind('b')#3", "'abc'.index('c')#2",
            "'a;b;'.split(';')|length#3", "'12'.isdigit()#True", "'abc'.startswith(('x', 'a'))#True",
            "'abc'[-1] ~ 'abc'[0]#ca", "n > 0#True", "n is none#False", "[true, n, 'it\\'s', 0.5]#\"[True, 1, \"\"it's\"\", 0.5]\"", "messages[0]#\"{'role': 'user', 'content': 'a'}\"", "{'k': n}|tojson#{\"k\": 1}", "n+1#2", "n*2+1#3", "n +1#2", "'+1'#+1",
            "messages[:n+1]|length#2", "messages[:(n+1)]|map(attribute='content')|join#ab", "messages[::-1]|map(attribute='content')|join#cba",
            "messages[n-1:n+1:1]|length#2", "'abcdef'[1:n+3]#bcd", "'abcdef'[::2]#ace"})
    void pythonStringMethodsArithmeticAndSlicesAsInJinja2(String expr, String expected) {
        JinjaChatTemplate t = new JinjaChatTemplate("{% set n = 1 %}{{ " + expr + " }}", "", "", "t");
        assertThat(t.render(List.of(m("user", "a"), m("assistant", "b"), m("user", "c")), false)).isEqualTo(expected);
    }

    @Test
    void tojsonWritesWhatPythonsJsonDumpsWrites() {
        // transformers' tojson: json.dumps(ensure_ascii=False) with its ", " and ": " separators, or indent
        JinjaChatTemplate t = new JinjaChatTemplate("{{ {'a': [1, 'x\u00e9\"'], 'b': none, 'c': true, 'd': 1.5, 'e': 1e-05}|tojson }}|{{ messages[0]|tojson(indent=2) }}", "", "", "t");
        assertThat(t.render(List.of(m("user", "l1\nl2\t\u0001")), false)).isEqualTo(
                "{\"a\": [1, \"x\u00e9\\\"\"], \"b\": null, \"c\": true, \"d\": 1.5, \"e\": 1e-05}|{\n  \"role\": \"user\",\n  \"content\": \"l1\\nl2\\t\\u0001\"\n}");
    }

    @Test
    void rawBlocksAreLeftAsTheyAre() {
        // Poolside's templates write tool-call syntax inside {% raw %}: nothing there is translated or run
        JinjaChatTemplate t = new JinjaChatTemplate("{%- raw -%} {{ x }} {% if %} not a is b {%- endraw -%}|{{ 1 > 0 }}|{% raw %}[{{ y+1 }}]{% endraw %}", "", "", "t");
        assertThat(t.render(List.of(), false)).isEqualTo("{{ x }} {% if %} not a is b|True|[{{ y+1 }}]");
        // Jinja2's whitespace rules at raw tags: lstrip_blocks before both, trim_blocks after endraw only
        assertThat(new JinjaChatTemplate("a\n  {% raw %}\n  {{ x }}\n  {% endraw %}\nb", "", "", "t").render(List.of(), false)).isEqualTo("a\n\n  {{ x }}\nb");
        assertThat(new JinjaChatTemplate("{% for i in [1,2] %}{% raw %}<{{i}}>{% endraw %}{{ i }}\n{% endfor %}", "", "", "t").render(List.of(), false))
                .isEqualTo("<{{i}}>1\n<{{i}}>2\n");
    }

    @Test
    void filteredLoopsDictKeysNestedDictsAndIndentFirstAsInJinja2() {
        // Jinja2's {% for x in xs if cond %} (Qwen3-Coder, Mistral Nemo, Seed-OSS write it in their tool sections):
        // jinjava ran such a loop zero times; loop.index and loop.last count the kept items only
        JinjaChatTemplate t = new JinjaChatTemplate("{% for m in messages if m.role == 'user' %}{{ m.content }}{{ loop.index }}{{ loop.last }},{% endfor %}"
                + "|{%- for k, v in {'a': 1, 'b': none, 'c': 3}.items() if v is not none -%} {{ k }}={{ v }}; {%- endfor %}"
                + "|{% for x in [1, 2, 3, 4] if x is odd %}{% for y in [x, x + 10] if y > 5 %}{{ y }}.{% endfor %}{{ x }};{% endfor %}", "", "", "t");
        assertThat(t.render(List.of(m("user", "a"), m("assistant", "b"), m("user", "c")), false))
                .isEqualTo("a1False,c2True,|a=1;c=3;|11.1;13.3;");
        // a dict iterates its keys; nested dict literals may end in "}}" inside an expression; Jinja 3's indent(first=)
        JinjaChatTemplate d = new JinjaChatTemplate("{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}|{{ {'a': {'b': 2}}.a.b }}|{{ 'p\nq'|indent(2, first=true) }}", "", "", "t");
        assertThat(d.render(List.of(), false)).isEqualTo("xy|2|  p\n  q");
    }

    @Test
    void loopElseAndFilterBlocksAsInJinja2() {
        // jinjava ignored both: a loop's else (run when the loop ran zero times) and {% filter %} blocks
        JinjaChatTemplate t = new JinjaChatTemplate("{% for m in [] %}x{% else %}empty{% endfor %}|{% for m in messages %}{{ m.role }}{% else %}none{% endfor %}"
                + "|{%- for x in [1, 2] if x > 5 -%} {{ x }} {%- else -%} nothing {%- endfor %}"
                + "|{% for a in [1] %}{% for b in [] %}B{% else %}noB{% endfor %}{% if a %}{% else %}x{% endif %}{% endfor %}"
                + "|{% filter upper %}shout {{ 'x' }}{% endfilter %}|{%- filter trim -%}   spaced   {%- endfilter %}|{% filter indent(2) %}a\nb{% endfilter %}\nend", "", "", "t");
        assertThat(t.render(List.of(m("user", "a")), false)).isEqualTo("empty|user|nothing|noB|SHOUT X|spaced|a\n  bend");
    }

    @Test
    void rangesAsLongAsJinja2sSandboxAllowsAndATemplateThatGrowsWithoutBoundFails() {
        // jinjava cut range() at 1,000 items without a word; Jinja2's sandbox allows 100,000
        assertThat(new JinjaChatTemplate("{{ range(5000)|length }}", "", "", "t").render(List.of(), false)).isEqualTo("5000");
        // a template in a model file that doubles a string 60 times is refused in one line instead of filling the heap
        JinjaChatTemplate bomb = new JinjaChatTemplate("{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}", "", "", "bomb.json");
        assertThatThrownBy(() -> bomb.render(List.of(), false)).isInstanceOf(LongspanException.class).hasMessageContaining("bomb.json");
        // macros call themselves as in Jinja2; one that never stops is refused, not rendered as nothing
        assertThat(new JinjaChatTemplate("{% macro f(n) %}{% if n < 5 %}{{ n }}{{ f(n + 1) }}{% endif %}{% endmacro %}{{ f(0) }}", "", "", "t")
                .render(List.of(), false)).isEqualTo("01234");
        JinjaChatTemplate endless = new JinjaChatTemplate("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "", "", "endless.json");
        assertThatThrownBy(() -> endless.render(List.of(), false)).isInstanceOf(LongspanException.class).hasMessageContaining("recursion");
    }

    @Test
    void aTemplatesLineBreaksAreJinja2s() {
        // one final line break of the template is dropped, and \r\n / \r read as \n, as Jinja2's lexer does
        assertThat(new JinjaChatTemplate("abc\n", "", "", "t").render(List.of(), false)).isEqualTo("abc");
        assertThat(new JinjaChatTemplate("abc\n\n", "", "", "t").render(List.of(), false)).isEqualTo("abc\n");
        assertThat(new JinjaChatTemplate("a\r\nb\rc\r\n", "", "", "t").render(List.of(), false)).isEqualTo("a\nb\nc");
        assertThat(new JinjaChatTemplate("{% if true %}\nx\n{% endif %}\n", "", "", "t").render(List.of(), false)).isEqualTo("x\n");
    }

    @Test
    void loopNeighboursAndIterableTestsAsInJinja2() {
        // Qwen3.5, Qwen3-Coder, Nemotron and Hermes open a tool-result block by loop.previtem and close it by
        // loop.nextitem, which jinjava lacks; Llama 3.1 writes a tool turn's text with tojson when it "is iterable"
        JinjaChatTemplate t = new JinjaChatTemplate("{%- for m in messages %}{%- if m.role == 'tool' %}{%- if loop.previtem and loop.previtem.role != 'tool' %}<u>"
                + "{% endif %}[{{ m.content }}]{%- if not loop.last and loop.nextitem.role != 'tool' %}</u>{% elif loop.last %}</u>{% endif %}"
                + "{% else %}{{ m.role }}:{{ m.content }};{% endif %}{% endfor %}|{{ 'ab' is iterable }}{{ 'ab' is sequence }}{{ 3 is iterable }}", "", "", "t");
        assertThat(t.render(List.of(m("user", "q"), m("assistant", "call"), m("tool", "r1"), m("tool", "r2"), m("assistant", "a"), m("tool", "r3")), false))
                .isEqualTo("user:q;assistant:call;<u>[r1][r2]</u>assistant:a;<u>[r3]</u>|TrueTrueFalse");
    }

    @Test
    void commentsTakeWhitespaceAsJinja2sDo() {
        // jinjava dropped comments while parsing, so a later {%- stripped across them (Apriel's and Command R7B's tool turns)
        JinjaChatTemplate t = new JinjaChatTemplate("{{ 'a' }}\n\n    {# c #}\n    {%- if true -%}b{% endif %}|{{- ' x ' -}}  |{#- c -#}  y\n{% if true %}\nz\n{% endif %}", "", "", "t");
        assertThat(t.render(List.of(), false)).isEqualTo("a\n\nb| x |y\nz\n");
    }

    @Test
    void theGenerationTagRendersItsBody() {
        // transformers' {% generation %} marks assistant tokens for training masks (SmolLM3, LFM2.5, Laguna)
        JinjaChatTemplate t = new JinjaChatTemplate("{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}[{{ m.content }}]{% endgeneration %}"
                + "{% else %}{{ m.content }}{% endif %}{% endfor %}", "", "", "t");
        assertThat(t.render(List.of(m("user", "q"), m("assistant", "a")), false)).isEqualTo("q[a]");
    }
}

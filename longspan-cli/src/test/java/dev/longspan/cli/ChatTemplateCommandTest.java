package dev.longspan.cli;

import static dev.longspan.cli.CliRun.shared;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** longspan chat-template: the prompt a model's template (or a template file) renders for a conversation. */
class ChatTemplateCommandTest {
    static TokenizeCommandTest.Result run(String stdin, String... args) { return TokenizeCommandTest.run(stdin, args); }

    @TempDir
    Path dir;

    @Test
    void rendersAModelsOwnTemplateWithItsVariables() throws Exception {
        String qwen = shared("tokenizers/qwen3").toString();
        TokenizeCommandTest.Result r = run("[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi {{ x }}\"}]",
                "chat-template", "--model", qwen);
        assertThat(r.code()).isZero();
        assertThat(r.out()).isEqualTo("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi {{ x }}<|im_end|>\n<|im_start|>assistant\n");
        // Qwen3's enable_thinking = false writes an empty reasoning block after the generation prompt
        r = run("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"chat_template_kwargs\":{\"enable_thinking\":false}}",
                "chat-template", "--model", qwen, "--json");
        JsonNode j = Json.MAPPER.readTree(r.out());
        assertThat(j.get("prompt").asText()).isEqualTo("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
        assertThat(j.get("ids").get(0).asInt()).isEqualTo(151644);
        assertThat(j.get("template").asText()).endsWith("tokenizer_config.json: chat_template");
        // the same from the command line's default variables; the input's own win
        r = run("[{\"role\":\"user\",\"content\":\"Hi\"}]", "chat-template", "--model", qwen, "--chat-template-kwargs", "{\"enable_thinking\": false}");
        assertThat(r.out()).endsWith("<think>\n\n</think>\n\n");
        r = run("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"chat_template_kwargs\":{\"enable_thinking\":true}}",
                "chat-template", "--model", qwen, "--chat-template-kwargs", "{\"enable_thinking\": false}");
        assertThat(r.out()).endsWith("<|im_start|>assistant\n");
        r = run("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"add_generation_prompt\":false}", "chat-template", "--model", qwen);
        assertThat(r.out()).isEqualTo("<|im_start|>user\nHi<|im_end|>\n");
        // OpenAI's text parts, joined by newlines as the server joins them
        r = run("[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}]", "chat-template", "--model", qwen);
        assertThat(r.out()).isEqualTo("<|im_start|>user\na\nb<|im_end|>\n<|im_start|>assistant\n");
    }

    @Test
    void aModelWithoutATemplateGetsItsFamilyDefault() throws Exception {
        TokenizeCommandTest.Result r = run("[{\"role\":\"user\",\"content\":\"Once\"}]", "chat-template", "--json",
                "--model", shared("models/stories260K/stories260K.gguf").toString());
        assertThat(r.code()).isZero();
        JsonNode j = Json.MAPPER.readTree(r.out());
        assertThat(j.get("prompt").asText()).isEqualTo("Once");
        assertThat(j.get("template").asText()).isEqualTo("none (family default)");
        assertThat(j.get("ids").get(0).asInt()).isEqualTo(1);   // BOS
    }

    @Test
    void batchModeRendersEachLineAndReportsARefusalInItsLine() throws Exception {
        Path t = dir.resolve("t.jinja");
        Files.writeString(t, "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system turns') }}{% endif %}"
                + "[{{ m.role }}] {{ m.content|trim }}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}");
        TokenizeCommandTest.Result r = run("{\"messages\":[{\"role\":\"user\",\"content\":\" a\\u00a0\"}]}\n\n"
                + "{\"messages\":[{\"role\":\"user\",\"content\":\"b\"}],\"add_generation_prompt\":false}\n",
                "chat-template", "--template", t.toString(), "--bos", "<s>", "--jsonl");
        assertThat(r.code()).isZero();
        assertThat(r.out().lines().toList()).containsExactly("{\"prompt\":\"<s>[user] a\\n[assistant]\"}", "{\"prompt\":\"<s>[user] b\\n\"}");
        // a template that refuses every system turn: Longspan puts the system text into the first user turn instead
        r = run("[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"U\"}]", "chat-template", "--template", t.toString());
        assertThat(r.out()).isEqualTo("[user] S\nU\n[assistant]");
        // a conversation the template refuses for another reason: an error line in batch mode, exit 2 otherwise
        Files.writeString(t, "{% if messages|length > 1 %}{{ raise_exception('one turn only') }}{% endif %}{{ messages[0].content }}");
        r = run("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]}\n{\"messages\":[{\"role\":\"user\",\"content\":\"c\"}]}\n",
                "chat-template", "--template", t.toString(), "--jsonl");
        assertThat(r.code()).isZero();
        assertThat(r.out().lines().toList()).hasSize(2);
        assertThat(r.out().lines().toList().get(0)).contains("\"error\"").contains("one turn only");
        assertThat(r.out().lines().toList().get(1)).isEqualTo("{\"prompt\":\"c\"}");
        r = run("[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]", "chat-template", "--template", t.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("one turn only");
    }

    @Test
    void badInputGetsOneLineAndExitTwo() throws Exception {
        Path t = dir.resolve("t.jinja");
        Files.writeString(t, "{{ messages[0].content }}");
        String[][] cases = {
                {"not json", "--template", t.toString()},
                {"{\"messages\": 3}", "--template", t.toString()},
                {"[{\"content\": \"x\"}]", "--template", t.toString()},
                {"[{\"role\": \"user\", \"content\": 5}]", "--template", t.toString()},
                {"[{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]", "--template", t.toString()},
                {"{\"messages\": [], \"add_generation_prompt\": \"yes\"}", "--template", t.toString()},
                {"{\"messages\": [], \"chat_template_kwargs\": {\"messages\": 1}}", "--template", t.toString()},
                {"[]", "--template", dir.resolve("missing.jinja").toString()},
                {"[]", "--template", t.toString(), "--chat-template-kwargs", "[1]"},
                {"[]", "--template", t.toString(), "--chat-template-kwargs", "{\"bos_token\": \"x\"}"},
                {"[]", "--model", shared("tokenizers/qwen3").toString(), "--bos", "<s>"},
                {"[]", "--template", t.toString(), "--json", "--jsonl"},
        };
        for (String[] c : cases) {
            String[] args = new String[c.length];
            args[0] = "chat-template";
            System.arraycopy(c, 1, args, 1, c.length - 1);
            TokenizeCommandTest.Result r = run(c[0], args);
            assertThat(r.code()).as(String.join(" ", c)).isEqualTo(2);
            assertThat(r.err().strip().lines().count()).as(String.join(" ", c)).isEqualTo(1);
            assertThat(r.err()).doesNotContain("Exception").doesNotContain("\tat ");
        }
    }
}

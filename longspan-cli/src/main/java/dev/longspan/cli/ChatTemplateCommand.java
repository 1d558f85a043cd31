package dev.longspan.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longspan.format.ChatPrompts;
import dev.longspan.format.ModelLoader;
import dev.longspan.io.Tokenizer;
import dev.longspan.io.TokenizerLoader;
import dev.longspan.model.ChatFormat;
import dev.longspan.model.ChatTemplate;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * Renders a conversation with a chat template and prints the prompt: the text generate and serve
 * feed the model. For checking a model's template (and Longspan's Jinja rendering) against other
 * tools, one conversation or, with --jsonl, many in one run.
 */
@Command(name = "chat-template", mixinStandardHelpOptions = true,
        description = {"Print the prompt a chat template renders for a conversation.",
                "The template is the model's own (Jinja, from tokenizer_config.json or the GGUF; its family default when it has",
                "none) or a Jinja template file.",
                "Standard input holds the conversation as JSON: an array of {\"role\": ..., \"content\": ...} messages, or an object",
                "{\"messages\": [...], \"add_generation_prompt\": true, \"chat_template_kwargs\": {...}}. With --jsonl, each input line",
                "is such an object and gives an output line {\"prompt\": ...}, or {\"error\": ...} where the template refuses it."})
final class ChatTemplateCommand implements Callable<Integer> {

    static final class Source {
        @Option(names = "--model", paramLabel = "PATH", required = true,
                description = "A GGUF file, a Hugging Face directory or a Longspan model directory (only its tokenizer and template are read).")
        Path model;

        @Option(names = "--template", paramLabel = "FILE", required = true, description = "A Jinja chat template file.")
        Path template;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    @Option(names = "--bos", paramLabel = "TEXT", description = "With --template: the bos_token variable (default: empty).")
    String bos = "";

    @Option(names = "--eos", paramLabel = "TEXT", description = "With --template: the eos_token variable (default: empty).")
    String eos = "";

    @Option(names = "--no-generation-prompt", description = "Do not open the assistant's turn (add_generation_prompt false) unless the input says so.")
    boolean noGenerationPrompt;

    @Option(names = "--chat-template-kwargs", paramLabel = "JSON",
            description = "Extra template variables, a JSON object, e.g. '{\"enable_thinking\": false}'; the input's chat_template_kwargs override them.")
    String templateKwargs;

    @Option(names = "--json", description = "Print one JSON object: {\"prompt\": ..., \"template\": ...}, with --model also the prompt's token ids.")
    boolean json;

    @Option(names = "--jsonl", description = "Batch mode: one conversation object per input line, one result per output line, in order.")
    boolean jsonl;

    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    public Integer call() throws IOException {
        if (jsonl && json) throw new LongspanException("--jsonl and --json cannot be combined (--jsonl already writes JSON)");
        if (source.model != null && (!bos.isEmpty() || !eos.isEmpty())) throw new LongspanException("--bos and --eos apply to --template (a model has its own)");
        Map<String, Object> defaults = JinjaChatTemplate.variables(templateKwargs, "--chat-template-kwargs");
        Tokenizer tok = null;
        ChatFormat chat;
        String name;
        if (source.template != null) {
            Path t = source.template;
            if (!Files.isRegularFile(t)) throw new LongspanException("--template " + t + ": no such file");
            chat = new JinjaChatTemplate(Files.readString(t, StandardCharsets.UTF_8), bos, eos, t.toString());
            name = t.toString();
        } else {
            Path m = source.model;
            if (!Files.exists(m)) throw new LongspanException("--model " + m + ": no such file or directory");
            tok = TokenizerLoader.load(m);
            ModelLoader.Format format = Files.isRegularFile(m) ? ModelLoader.Format.GGUF
                    : Files.isRegularFile(m.resolve("tokenizer_config.json")) ? ModelLoader.Format.SAFETENSORS : ModelLoader.Format.LONGSPAN;
            ChatPrompts.Definition d = ChatPrompts.definition(tok, format, m);
            chat = d == null ? ChatTemplate.detect(null, tok) : new JinjaChatTemplate(d.template(), d.bosToken(), d.eosToken(), d.source());
            name = d == null ? chat.id() + " (family default)" : d.source();
        }
        chat = chat.withVariables(defaults);
        if (jsonl) return batch(chat);
        JsonNode input;
        try {
            input = JSON.readTree(System.in.readAllBytes());
        } catch (JsonProcessingException e) {
            throw new LongspanException("standard input: not JSON: " + e.getOriginalMessage());
        }
        Conversation c = conversation(input, "standard input");
        String prompt = chat.render(c.messages, c.addGenerationPrompt, c.variables);
        if (json) {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("prompt", prompt);
            out.put("template", name);
            if (tok != null) out.put("ids", ChatPrompts.ids(tok, prompt));
            Json.print(out);
        } else {
            System.out.print(prompt);
            System.out.flush();
        }
        return Main.EXIT_OK;
    }

    private record Conversation(List<ChatFormat.Message> messages, boolean addGenerationPrompt, Map<String, Object> variables) {}

    private int batch(ChatFormat chat) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        int n = 0;
        for (String line; (line = in.readLine()) != null; ) {
            n++;
            if (line.isBlank()) continue;
            JsonNode node;
            try {
                node = JSON.readTree(line);
            } catch (JsonProcessingException e) {
                throw new LongspanException("standard input line " + n + ": not JSON: " + e.getOriginalMessage());
            }
            Conversation c = conversation(node, "standard input line " + n);
            Map<String, Object> out = new LinkedHashMap<>();
            try {
                out.put("prompt", chat.render(c.messages, c.addGenerationPrompt, c.variables));
            } catch (LongspanException e) {
                out.put("error", e.getMessage());   // the template refused this conversation; the others still render
            }
            System.out.println(JSON.writeValueAsString(out));
        }
        System.out.flush();
        return Main.EXIT_OK;
    }

    @SuppressWarnings("unchecked")
    private Conversation conversation(JsonNode node, String where) {
        JsonNode ms = node;
        boolean agp = !noGenerationPrompt;
        Map<String, Object> vars = Map.of();
        if (node.isObject()) {
            ms = node.get("messages");
            JsonNode a = node.get("add_generation_prompt");
            if (a != null && !a.isNull()) {
                if (!a.isBoolean()) throw new LongspanException(where + ": add_generation_prompt must be true or false");
                agp = a.asBoolean();
            }
            JsonNode kw = node.get("chat_template_kwargs");
            if (kw != null && !kw.isNull()) {
                if (!kw.isObject()) throw new LongspanException(where + ": chat_template_kwargs must be an object");
                vars = JSON.convertValue(kw, LinkedHashMap.class);
                for (String k : vars.keySet()) {
                    if (JinjaChatTemplate.RESERVED.contains(k)) throw new LongspanException(where + ": chat_template_kwargs." + k + " is set by Longspan and cannot be given");
                }
            }
        }
        if (ms == null || !ms.isArray()) throw new LongspanException(where + ": expected an array of messages or {\"messages\": [...]}");
        List<ChatFormat.Message> messages = new ArrayList<>();
        for (int i = 0; i < ms.size(); i++) {
            JsonNode m = ms.get(i);
            if (!m.isObject() || !m.path("role").isTextual()) throw new LongspanException(where + ": messages[" + i + "] needs a string \"role\"");
            messages.add(new ChatFormat.Message(m.get("role").asText(), content(m.get("content"), where + ": messages[" + i + "].content")));
        }
        return new Conversation(messages, agp, vars);
    }

    // a message's text: a string, or OpenAI's text parts joined by newlines (as the server joins them)
    private static String content(JsonNode c, String where) {
        if (c == null || c.isNull()) return "";
        if (c.isTextual()) return c.asText();
        if (!c.isArray()) throw new LongspanException(where + " must be a string or an array of text parts");
        StringBuilder b = new StringBuilder();
        for (JsonNode part : c) {
            if (!part.path("type").asText().equals("text") || !part.path("text").isTextual()) throw new LongspanException(where + ": only text parts are supported");
            if (!b.isEmpty()) b.append('\n');
            b.append(part.get("text").asText());
        }
        return b.toString();
    }
}

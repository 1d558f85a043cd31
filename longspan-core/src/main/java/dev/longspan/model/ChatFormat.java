package dev.longspan.model;

import java.util.List;
import java.util.Map;

/**
 * Renders a conversation into the prompt text a chat model was trained on. Implementations: the
 * model file's own Jinja template (rendered outside the core, which has no dependencies) and
 * {@link ChatTemplate}'s family defaults for models without one.
 */
public interface ChatFormat {
    /** One turn: role "system", "user" or "assistant" (templates may know more, e.g. "tool"). */
    record Message(String role, String content) {}

    /** The prompt text; addGenerationPrompt opens the assistant's turn after the messages. */
    String render(List<Message> messages, boolean addGenerationPrompt);

    /**
     * As {@link #render(List, boolean)}, with extra variables for the template (Hugging Face's and
     * llama.cpp's chat_template_kwargs, e.g. Qwen3's enable_thinking). Family defaults have no
     * variables and ignore them.
     */
    default String render(List<Message> messages, boolean addGenerationPrompt, Map<String, Object> variables) {
        return render(messages, addGenerationPrompt);
    }

    /** This format with default template variables; those given at render time win. */
    default ChatFormat withVariables(Map<String, Object> defaults) {
        if (defaults.isEmpty()) return this;
        ChatFormat base = this;
        return new ChatFormat() {
            @Override public String render(List<Message> messages, boolean addGenerationPrompt) {
                return render(messages, addGenerationPrompt, Map.of());
            }

            @Override public String render(List<Message> messages, boolean addGenerationPrompt, Map<String, Object> variables) {
                Map<String, Object> merged = new java.util.LinkedHashMap<>(defaults);
                merged.putAll(variables);
                return base.render(messages, addGenerationPrompt, merged);
            }

            @Override public String id() { return base.id(); }
        };
    }

    /** A short name for output, e.g. "jinja" or "chatml". */
    String id();
}

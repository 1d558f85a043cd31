package dev.longspan.model;

import java.util.List;

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

    /** A short name for output, e.g. "jinja" or "chatml". */
    String id();
}

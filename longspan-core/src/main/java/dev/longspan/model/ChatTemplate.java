package dev.longspan.model;

import dev.longspan.io.Tokenizer;

import java.util.List;

/**
 * The chat formats of the common model families, chosen from a model's Jinja chat template (by
 * its marker tokens; the template itself is not executed) or, without one, from its special tokens.
 * The fallback when a model's own template cannot be rendered (see {@link ChatFormat}).
 * {@link #apply} wraps one user message and opens the assistant turn; BOS is added by the caller.
 */
public enum ChatTemplate implements ChatFormat {
    /** No template: the prompt is fed as is. */
    NONE("none"),
    /** Llama 2 chat: {@code [INST] msg [/INST]}. */
    LLAMA2("llama2"),
    /** Llama 3 header tokens: {@code <|start_header_id|>user<|end_header_id|>\n\nmsg<|eot_id|>...}. */
    LLAMA3("llama3"),
    /** ChatML (Qwen and others): {@code <|im_start|>user\nmsg<|im_end|>\n<|im_start|>assistant\n}. */
    CHATML("chatml");

    public final String id;

    ChatTemplate(String id) { this.id = id; }

    @Override public String id() { return id; }

    /** Every turn in the family's markup; NONE joins the contents with blank lines. */
    @Override
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        StringBuilder b = new StringBuilder();
        String system = null;
        for (Message m : messages) {
            switch (this) {
                case NONE -> b.append(b.isEmpty() ? "" : "\n\n").append(m.content());
                case LLAMA2 -> {
                    // Llama 2 folds the system prompt into the first [INST] block
                    if (m.role().equals("system")) system = m.content().strip();
                    else if (m.role().equals("user")) {
                        String u = system != null ? "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + m.content().strip() : m.content().strip();
                        system = null;
                        b.append("[INST] ").append(u).append(" [/INST]");
                    } else b.append(" ").append(m.content().strip()).append(" </s>");
                }
                case LLAMA3 -> b.append("<|start_header_id|>").append(m.role()).append("<|end_header_id|>\n\n").append(m.content().strip()).append("<|eot_id|>");
                case CHATML -> b.append("<|im_start|>").append(m.role()).append('\n').append(m.content()).append("<|im_end|>\n");
            }
        }
        if (addGenerationPrompt) {
            switch (this) {
                case LLAMA3 -> b.append("<|start_header_id|>assistant<|end_header_id|>\n\n");
                case CHATML -> b.append("<|im_start|>assistant\n");
                default -> { }
            }
        }
        return b.toString();
    }

    public String apply(String user) {
        return switch (this) {
            case NONE -> user;
            case LLAMA2 -> "[INST] " + user.strip() + " [/INST]";
            case LLAMA3 -> "<|start_header_id|>user<|end_header_id|>\n\n" + user + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
            case CHATML -> "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
        };
    }

    /**
     * The family of a Jinja chat template (null when the model has none), else of the tokenizer's
     * special tokens; NONE when nothing matches.
     */
    public static ChatTemplate detect(String jinja, Tokenizer tok) {
        if (jinja != null) {
            if (jinja.contains("<|start_header_id|>")) return LLAMA3;
            if (jinja.contains("<|im_start|>")) return CHATML;
            if (jinja.contains("[INST]")) return LLAMA2;
        }
        if (tok.tokenId("<|start_header_id|>") >= 0 && tok.tokenId("<|eot_id|>") >= 0) return LLAMA3;
        if (tok.tokenId("<|im_start|>") >= 0 && tok.tokenId("<|im_end|>") >= 0) return CHATML;
        return NONE;
    }
}

package dev.longspan.server;

import java.util.ArrayList;
import java.util.List;

/**
 * A thinking model's reasoning, split off its answer as llama.cpp's server does by default
 * ({@code --reasoning-format deepseek}) and vLLM's reasoning parsers do: the text between
 * {@code <think>} and {@code </think>} goes to {@code reasoning_content}, the rest to
 * {@code content}. The reasoning starts either in the prompt (a template whose generation prompt
 * ends with {@code <think>}, as DeepSeek R1's does) or at the start of the output; a reasoning the
 * output never closes is all reasoning. Text that only might be the start of a tag is held back until
 * the next piece decides, so streamed pieces split exactly as the whole text does.
 */
final class Reasoning {
    static final String OPEN = "<think>", CLOSE = "</think>";

    /** One piece of output: reasoning or answer text. */
    record Part(boolean reasoning, String text) {}

    /** Whether a rendered chat prompt leaves the model inside a reasoning block (its last tag an open think). */
    static boolean promptOpensReasoning(String prompt) {
        return prompt.stripTrailing().endsWith(OPEN);
    }

    private enum State { START, REASONING, ANSWER }

    private State state;
    private final StringBuilder held = new StringBuilder();
    private boolean answerStarted, reasoned;

    Reasoning(boolean insideAtStart) {
        this.state = insideAtStart ? State.REASONING : State.START;
        this.reasoned = insideAtStart;
    }

    /** The parts a streamed piece of output completes (possibly none while a tag may be forming). */
    List<Part> accept(String piece) {
        held.append(piece);
        List<Part> out = new ArrayList<>();
        while (true) {
            String h = held.toString();
            switch (state) {
                case START -> {
                    String lead = h.stripLeading();
                    if (lead.startsWith(OPEN)) {
                        held.setLength(0);
                        held.append(lead.substring(OPEN.length()));
                        state = State.REASONING;
                        reasoned = true;
                        continue;
                    }
                    if (OPEN.startsWith(lead)) return out;   // whitespace, or a prefix of the tag: wait
                    state = State.ANSWER;
                    continue;
                }
                case REASONING -> {
                    int at = h.indexOf(CLOSE);
                    if (at >= 0) {
                        if (at > 0) out.add(new Part(true, h.substring(0, at)));
                        held.setLength(0);
                        held.append(h.substring(at + CLOSE.length()));
                        state = State.ANSWER;
                        continue;
                    }
                    int keep = partialTag(h, CLOSE);
                    if (h.length() > keep) out.add(new Part(true, h.substring(0, h.length() - keep)));
                    held.setLength(0);
                    held.append(h.substring(h.length() - keep));
                    return out;
                }
                case ANSWER -> {
                    // the answer after a reasoning block starts past the whitespace that separates them;
                    // an output without one is its content exactly
                    String a = answerStarted || !reasoned ? h : h.stripLeading();
                    if (!a.isEmpty()) {
                        out.add(new Part(false, a));
                        answerStarted = true;
                    }
                    held.setLength(0);
                    return out;
                }
            }
        }
    }

    /** What is still held when the output ends. */
    List<Part> finish() {
        String h = held.toString();
        held.setLength(0);
        if (state == State.ANSWER && !answerStarted && reasoned) h = h.stripLeading();
        return h.isEmpty() ? List.of() : List.of(new Part(state == State.REASONING, h));
    }

    /** The whole output split: {reasoning, or null when there was none; content}. */
    static String[] split(String text, boolean insideAtStart) {
        Reasoning r = new Reasoning(insideAtStart);
        StringBuilder reasoning = new StringBuilder(), content = new StringBuilder();
        List<Part> parts = new ArrayList<>(r.accept(text));
        parts.addAll(r.finish());
        for (Part p : parts) (p.reasoning() ? reasoning : content).append(p.text());
        // a reasoning of whitespace only (an empty think block) is no reasoning, as llama.cpp drops it
        return new String[]{r.reasoned && !reasoning.toString().isBlank() ? reasoning.toString() : null, content.toString()};
    }

    // the length of the longest suffix of s that is a proper prefix of tag
    private static int partialTag(String s, String tag) {
        for (int k = Math.min(s.length(), tag.length() - 1); k > 0; k--) {
            if (s.endsWith(tag.substring(0, k))) return k;
        }
        return 0;
    }
}

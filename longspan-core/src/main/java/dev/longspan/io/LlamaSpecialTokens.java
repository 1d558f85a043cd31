package dev.longspan.io;

import java.util.ArrayList;
import java.util.List;

/**
 * How llama.cpp finds special tokens in text before running the tokenizer proper
 * ({@code tokenizer_st_partition}): control, user-defined and unknown tokens, longest first, each one
 * splitting every plain fragment at each of its occurrences; an {@code lstrip}/{@code rstrip} token
 * swallows ASCII whitespace beside it. With {@code parseSpecial} false (llama.cpp's tokenizer tests,
 * text that must not be read as markup) control and unknown tokens stay text; user-defined ones still split.
 */
final class LlamaSpecialTokens {
    static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;

    private final String[] texts;
    private final int[] ids;
    private final boolean[] control;   // control or unknown: only matched when parsing special tokens
    private final boolean[] lstrip, rstrip;

    /** types: GGUF token types; strip: per id, {lstrip, rstrip} flags or null. */
    LlamaSpecialTokens(String[] tokens, int[] types, boolean[] lstripById, boolean[] rstripById) {
        List<Integer> sp = new ArrayList<>();
        for (int i = 0; i < tokens.length; i++) {
            if (types[i] == CONTROL || types[i] == USER_DEFINED || types[i] == UNKNOWN) sp.add(i);
        }
        // longest first (UTF-8 length, as llama.cpp sorts); equal lengths in id order
        sp.sort((a, b) -> Integer.compare(utf8Length(tokens[b]), utf8Length(tokens[a])));
        int n = sp.size();
        texts = new String[n];
        ids = new int[n];
        control = new boolean[n];
        lstrip = new boolean[n];
        rstrip = new boolean[n];
        for (int k = 0; k < n; k++) {
            int id = sp.get(k);
            texts[k] = tokens[id];
            ids[k] = id;
            control[k] = types[id] != USER_DEFINED;
            lstrip[k] = lstripById != null && lstripById[id];
            rstrip[k] = rstripById != null && rstripById[id];
        }
    }

    private static int utf8Length(String s) {
        return s.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
    }

    /** llama.cpp's isspace in the C locale. */
    private static boolean isSpace(char c) {
        return c == ' ' || (c >= '\t' && c <= '\r');
    }

    /** The text split into plain fragments (id -1) and special tokens, in order; empty fragments dropped. */
    List<AddedTokens.Piece> split(String text, boolean parseSpecial) {
        List<AddedTokens.Piece> frags = new ArrayList<>();
        if (text.isEmpty()) return frags;
        frags.add(new AddedTokens.Piece(text, -1));
        for (int k = 0; k < texts.length; k++) {
            if (!parseSpecial && control[k]) continue;
            String t = texts[k];
            if (t.isEmpty()) continue;
            List<AddedTokens.Piece> next = new ArrayList<>(frags.size() + 2);
            for (AddedTokens.Piece f : frags) {
                if (f.isToken() || !f.text().contains(t)) { next.add(f); continue; }
                String s = f.text();
                int from = 0;
                while (true) {
                    int m = s.indexOf(t, from);
                    if (m < 0) {
                        if (from < s.length()) next.add(new AddedTokens.Piece(s.substring(from), -1));
                        break;
                    }
                    int leftEnd = m;
                    if (lstrip[k]) while (leftEnd > from && isSpace(s.charAt(leftEnd - 1))) leftEnd--;
                    if (leftEnd > from) next.add(new AddedTokens.Piece(s.substring(from, leftEnd), -1));
                    next.add(new AddedTokens.Piece(t, ids[k]));
                    from = m + t.length();
                    if (rstrip[k]) while (from < s.length() && isSpace(s.charAt(from))) from++;
                }
            }
            frags = next;
        }
        return frags;
    }

    /** Per-id strip flags for llama.cpp's name-based rules (phi-3 special tokens strip the whitespace after them). */
    static boolean[][] stripFlags(String modelName, String pre, String[] tokens, int[] types) {
        boolean[] l = new boolean[tokens.length], r = new boolean[tokens.length];
        String name = modelName == null ? "" : modelName.toLowerCase(java.util.Locale.ROOT);
        String p = pre == null ? "" : pre;
        if (p.contains("jina-v2-de") || p.contains("jina-v2-es") || p.contains("jina-v2-code")) {
            for (int i = 0; i < tokens.length; i++) if (tokens[i].equals("<mask>")) l[i] = true;
        } else if (name.contains("phi-3") || name.contains("phi3")) {
            for (int i = 0; i < tokens.length; i++) {
                if (types[i] == CONTROL || types[i] == USER_DEFINED || types[i] == UNKNOWN || tokens[i].equals("</s>")) r[i] = true;
                if (tokens[i].equals("<unk>") || tokens[i].equals("<s>") || tokens[i].equals("<|endoftext|>")) r[i] = false;
            }
        } else if (name.contains("modern-bert")) {
            for (int i = 0; i < tokens.length; i++) if (tokens[i].equals("[MASK]")) l[i] = true;
        }
        return new boolean[][]{l, r};
    }
}

package dev.longspan.io;

/**
 * The tidying of decoded text that model files ask for ("clean_up_tokenization_spaces"): word-level
 * tokenizations leave a space before punctuation and contractions ("Hello , world ! I 'm"), which
 * decoding for display removes. It is not concatenative (decoding a sequence in two parts can give
 * another text than decoding it whole), so generation never applies it; {@link Tokenizer#detokenize}
 * does, as llama.cpp's {@code llama_detokenize} and Hugging Face's {@code decode} do.
 */
public enum SpaceCleanup {
    /** The text as decoded. */
    NONE,
    /**
     * llama.cpp's three passes (BPE vocabularies of most pre-tokenizers, WordPiece): a space before
     * {@code ? ! . ,} goes; a lone apostrophe between spaces loses both; a space before {@code 's 'm 're 've} goes.
     */
    LLAMA_CPP,
    /** Hugging Face transformers' {@code clean_up_tokenization}: the same, plus {@code " n't"}, applied as string replacements. */
    HUGGING_FACE;

    public String apply(String text) {
        return switch (this) {
            case NONE -> text;
            case LLAMA_CPP -> llamaCpp(text);
            case HUGGING_FACE -> text.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",")
                    .replace(" ' ", "'").replace(" n't", "n't").replace(" 'm", "'m").replace(" 's", "'s")
                    .replace(" 've", "'ve").replace(" 're", "'re");
        };
    }

    // each pass reads the previous pass's text and keeps a character unless the rule drops it
    private static String llamaCpp(String s) {
        StringBuilder a = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char x = s.charAt(i);
            if (x == ' ' && i + 1 < s.length() && "?!.,".indexOf(s.charAt(i + 1)) >= 0) continue;
            a.append(x);
        }
        StringBuilder b = new StringBuilder(a.length());
        for (int i = 0; i < a.length(); i++) {
            char x = a.charAt(i);
            // " ' " → "'": the space before goes, and the one after is skipped
            if (i > 0 && x == '\'' && i + 1 < a.length() && a.charAt(i - 1) == ' ' && a.charAt(i + 1) == ' ' && !b.isEmpty()
                    && b.charAt(b.length() - 1) == ' ') {
                b.setLength(b.length() - 1);
                b.append(x);
                i++;
                continue;
            }
            b.append(x);
        }
        StringBuilder c = new StringBuilder(b.length());
        for (int i = 0; i < b.length(); i++) {
            char x = b.charAt(i);
            if (x == ' ' && i + 2 < b.length() && b.charAt(i + 1) == '\'') {
                char x1 = b.charAt(i + 2);
                boolean two = i + 3 < b.length();
                if (x1 == 's' || x1 == 'm' || (two && ((x1 == 'r' && b.charAt(i + 3) == 'e') || (x1 == 'v' && b.charAt(i + 3) == 'e')))) continue;
            }
            c.append(x);
        }
        return c.toString();
    }
}

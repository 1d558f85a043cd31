package dev.longspan.io;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class GgufTokenizersTest {
    @TempDir
    Path dir;

    static Tokenizer tinyLlama() {
        try (GgufFile g = GgufFile.open(TestData.shared("gguf/tiny-random-llama.gguf"))) {
            return GgufTokenizers.fromGguf(g);
        }
    }

    static int b(int x) { return x + 3; } // byte tokens <0x00>..<0xFF> are ids 3..258

    @Test
    void tinyLlamaVocabularyFallsBackToBytes() {
        Tokenizer t = tinyLlama();
        assertThat(t).isInstanceOf(SentencePieceTokenizer.class);
        assertThat(t.vocabSize()).isEqualTo(32000);
        assertThat(t.bosId()).isEqualTo(1);
        assertThat(t.eosId()).isEqualTo(2);
        assertThat(t.addBos()).isTrue();
        // the synthetic vocabulary (▁tok0..) has no pieces that text can reach: every byte falls back, after the ▁ prefix
        assertThat(t.encode("Hi")).containsExactly(b(0xE2), b(0x96), b(0x81), b('H'), b('i'));
        assertThat(t.encode("a b")).containsExactly(b(0xE2), b(0x96), b(0x81), b('a'), b(0xE2), b(0x96), b(0x81), b('b'));
        assertThat(t.encode("é")).containsExactly(b(0xE2), b(0x96), b(0x81), b(0xC3), b(0xA9));
        // control tokens are matched whole; a ▁ is prefixed after them
        assertThat(t.encode("<s>x</s>")).containsExactly(1, b(0xE2), b(0x96), b(0x81), b('x'), 2);
        assertThat(t.encode("")).isEmpty();
        assertThat(new String(t.tokenBytes(b('A')), StandardCharsets.UTF_8)).isEqualTo("A");
        assertThat(new String(t.tokenBytes(300), StandardCharsets.UTF_8)).isEqualTo(" tok41");
    }

    @Test
    void tinyLlamaRoundTripsVariedText() {
        Tokenizer t = tinyLlama();
        List<String> corpus = new ArrayList<>(Arrays.asList(TestData.FIXED));
        corpus.addAll(TestData.random(200, 5));
        corpus.addAll(TestData.kjv(2000));
        for (String s : corpus) {
            int[] ids = t.encode(s);
            for (int id : ids) assertThat(id).isBetween(0, 31999);
            assertThat(t.decode(ids)).isEqualTo(s);
        }
    }

    /** A hand-made SentencePiece vocabulary where the merges can be worked out on paper. */
    static SentencePieceTokenizer handMade() {
        List<String> tok = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        List<Float> sc = new ArrayList<>(List.of(0f, 0f, 0f));
        List<Integer> ty = new ArrayList<>(List.of(2, 3, 3));
        for (int i = 0; i < 256; i++) { tok.add(String.format("<0x%02X>", i)); sc.add(0f); ty.add(6); }
        String[] pieces = {"▁", "h", "e", "l", "o", "w", "r", "d", "ll", "▁h", "▁he", "llo", "▁hello", "el", "or", "<tool>"};
        float[] scores = {-10, -10, -10, -10, -10, -10, -10, -10, -1, -2, -3, -4, -5, -1.5f, -6, 0};
        for (int i = 0; i < pieces.length; i++) {
            tok.add(pieces[i]);
            sc.add(scores[i]);
            ty.add(pieces[i].equals("<tool>") ? 4 : 1);
        }
        float[] s = new float[sc.size()];
        for (int i = 0; i < s.length; i++) s[i] = sc.get(i);
        return new SentencePieceTokenizer("hand-made", tok.toArray(String[]::new), s, ty.stream().mapToInt(Integer::intValue).toArray(),
                1, 2, 0, -1, true, true);
    }

    /**
     * A byte token's byte as llama.cpp reads it: strtol of the two characters after "<0x" (a damaged name still loads:
     * "<0x?F>" is byte 0, "<0x4" byte 4), and a text shorter than three characters refuses the vocabulary, as in llama.cpp.
     */
    @Test
    void byteTokensAreReadAsLlamaCppReadsThem() {
        String[] tok = {"<unk>", "<s>", "</s>", "<0x41>", "<0x?F>", "<0x4", "<0x 7>", "\u2581a"};
        SentencePieceTokenizer t = new SentencePieceTokenizer("odd", tok, new float[8], new int[]{2, 3, 3, 6, 6, 6, 6, 1}, 1, 2, 0, -1, true, true);
        assertThat(t.tokenBytes(3)).containsExactly(0x41);
        assertThat(t.tokenBytes(4)).containsExactly(0);
        assertThat(t.tokenBytes(5)).containsExactly(4);
        assertThat(t.tokenBytes(6)).containsExactly(7);                 // strtol skips leading white space
        String[] shortName = {"<unk>", "<s>", "</s>", "<0"};
        assertThatThrownBy(() -> new SentencePieceTokenizer("short.gguf", shortName, new float[4], new int[]{2, 3, 3, 6}, 1, 2, 0, -1, true, true))
                .isInstanceOf(LongspanException.class).hasMessageContaining("short.gguf").hasMessageContaining("byte token 3");
    }

    @Test
    void mergesByScoreLikeLlamaCpp() {
        SentencePieceTokenizer t = handMade();
        int base = 259;
        // ▁ h e l l o: ll (-1) first, then ▁h (-2), ▁he (-3), llo (-4), ▁hello (-5); el (-1.5) went stale when ll merged
        assertThat(t.encode("hello")).containsExactly(t.tokenId("▁hello"));
        // ▁ w o r l d: only "or" is a vocabulary pair
        assertThat(t.encode("world")).containsExactly(base, base + 5, t.tokenId("or"), base + 3, base + 7);
        // é is not in the vocabulary: its UTF-8 bytes
        assertThat(t.encode("hé")).containsExactly(t.tokenId("▁h"), b(0xC3), b(0xA9));
        // user-defined tokens are matched whole
        assertThat(t.encode("hello<tool>hello")).containsExactly(t.tokenId("▁hello"), t.tokenId("<tool>"), t.tokenId("▁hello"));
        assertThat(t.decode(t.encode("hello<tool>hello world"))).isEqualTo("hello<tool>hello world");
        assertThat(t.decode(t.encode("  two leading"))).isEqualTo("  two leading");
    }

    @Test
    void gpt2GgufMatchesTheTokenizerJson() {
        BpeTokenizer json = BpeTokenizer.fromTokenizerJson(TestData.shared("tokenizers/qwen3/tokenizer.json"));
        int n = json.vocabSize();
        String[] tokens = new String[n];
        int[] types = new int[n];
        for (int i = 0; i < n; i++) {
            tokens[i] = json.token(i);
            types[i] = json.isSpecial(i) ? 3 : (json.tokenId(tokens[i]) == i && i >= 151643 ? 4 : 1);
        }
        Path p = dir.resolve("qwen-vocab.gguf");
        new GgufWriter().putString("general.architecture", "qwen3")
                .putString("tokenizer.ggml.model", "gpt2").putString("tokenizer.ggml.pre", "qwen2")
                .putStringArray("tokenizer.ggml.tokens", tokens).putI32Array("tokenizer.ggml.token_type", types)
                .putStringArray("tokenizer.ggml.merges", json.mergeStrings())
                .putU32("tokenizer.ggml.eos_token_id", 151645).putU32("tokenizer.ggml.padding_token_id", 151643)
                .putBool("tokenizer.ggml.add_bos_token", false)
                .write(p);
        Tokenizer g;
        try (GgufFile f = GgufFile.open(p)) {
            g = GgufTokenizers.fromGguf(f);
        }
        assertThat(g.eosId()).isEqualTo(151645);
        assertThat(g.stopIds()).contains(151645, 151643);
        List<String> corpus = new ArrayList<>(Arrays.asList(TestData.FIXED));
        corpus.addAll(TestData.random(200, 3));
        corpus.addAll(TestData.kjv(1000));
        for (String s : corpus) {
            String nfc = Normalizer.normalize(s, Normalizer.Form.NFC); // llama.cpp does not normalize
            BpeTokenizerTest.assertSameIds(nfc, g.encode(nfc), json.encode(s));
            assertThat(g.decode(g.encode(nfc))).isEqualTo(nfc);
        }
    }

    @Test
    void refusesUnsupportedTokenizerModels() {
        Path p = dir.resolve("t5.gguf");
        new GgufWriter().putString("tokenizer.ggml.model", "t5").putStringArray("tokenizer.ggml.tokens", new String[]{"a"}).write(p);
        try (GgufFile f = GgufFile.open(p)) {
            assertThatThrownBy(() -> GgufTokenizers.fromGguf(f)).isInstanceOf(LongspanException.class).hasMessageContaining("'t5' is not supported")
                    .hasMessageNotContaining("\n");
        }
        // a token's text ends at its first NUL, as llama.cpp reads it (a C string): "b\0c" is "b", so "b" means id 2
        Path z = dir.resolve("nul.gguf");
        new GgufWriter().putString("tokenizer.ggml.model", "gpt2").putStringArray("tokenizer.ggml.tokens", new String[]{"a", "x", "b\0c"})
                .putStringArray("tokenizer.ggml.merges", new String[0]).write(z);
        try (GgufFile f = GgufFile.open(z)) {
            assertThat(GgufTokenizers.fromGguf(f).encode("b", false)).containsExactly(2);
        }
        // a text listed twice loads as llama.cpp loads it: the text means its last id
        Path d = dir.resolve("dup.gguf");
        new GgufWriter().putString("tokenizer.ggml.model", "gpt2").putStringArray("tokenizer.ggml.tokens", new String[]{"a", "b", "a"})
                .putStringArray("tokenizer.ggml.merges", new String[0]).write(d);
        try (GgufFile f = GgufFile.open(d)) {
            assertThat(GgufTokenizers.fromGguf(f).encode("ab", false)).containsExactly(2, 1);
        }
        Path q = dir.resolve("none.gguf");
        new GgufWriter().putString("general.architecture", "llama").write(q);
        try (GgufFile f = GgufFile.open(q)) {
            assertThatThrownBy(() -> GgufTokenizers.fromGguf(f)).isInstanceOf(LongspanException.class).hasMessageContaining("has no tokenizer");
        }
        Path r = dir.resolve("pre.gguf");
        new GgufWriter().putString("tokenizer.ggml.model", "gpt2").putString("tokenizer.ggml.pre", "martian")
                .putStringArray("tokenizer.ggml.tokens", new String[]{"a"}).putStringArray("tokenizer.ggml.merges", new String[0]).write(r);
        try (GgufFile f = GgufFile.open(r)) {
            assertThatThrownBy(() -> GgufTokenizers.fromGguf(f)).isInstanceOf(LongspanException.class).hasMessageContaining("'martian'")
                    .hasMessageContaining("sarvam-moe").hasMessageNotContaining("\n");
        }
    }

    /** A byte-level vocabulary: every byte character, a few merges. */
    private Path byteLevelGguf(String file, String pre, java.util.function.UnaryOperator<GgufWriter> extra) {
        List<String> tok = new ArrayList<>();
        for (int b = 0; b < 256; b++) tok.add(String.valueOf(BpeTokenizer.BYTE_TO_CHAR[b]));
        String[] merges = {"i e", "ie d", "m o", "mo n", "mon t", "mont h", "month s", "\u0120 m", "\u0120 months", "\u0120 4"};
        for (String m : merges) tok.add(m.replace(" ", ""));
        tok.add("<|end|>");
        int[] types = new int[tok.size()];
        Arrays.fill(types, 1);
        types[types.length - 1] = 3;
        Path p = dir.resolve(file);
        extra.apply(new GgufWriter().putString("tokenizer.ggml.model", "gpt2").putString("tokenizer.ggml.pre", pre)
                .putStringArray("tokenizer.ggml.tokens", tok.toArray(String[]::new)).putI32Array("tokenizer.ggml.token_type", types)
                .putStringArray("tokenizer.ggml.merges", merges)).write(p);
        return p;
    }

    private Tokenizer load(Path p) {
        try (GgufFile f = GgufFile.open(p)) {
            return GgufTokenizers.fromGguf(f);
        }
    }

    private static List<String> pieces(Tokenizer t, int[] ids) {
        List<String> out = new ArrayList<>();
        for (int id : ids) out.add(((GgufBpeTokenizer) t).token(id));
        return out;
    }

    @Test
    void preTokenizersSplitLikeLlamaCpp() {
        // starcoder/refact isolate every digit (½ is \p{N}) before the GPT-2 regex: " 4" never forms
        Tokenizer star = load(byteLevelGguf("star.gguf", "starcoder", w -> w));
        assertThat(pieces(star, star.encode("ied 4 ½ months"))).containsExactly("ied", "\u0120", "4", "\u0120", "\u00c2", "\u00bd", "\u0120months");
        // plain GPT-2 keeps " 4" and " ½" as words
        Tokenizer gpt2 = load(byteLevelGguf("gpt2.gguf", "gpt-2", w -> w));
        assertThat(pieces(gpt2, gpt2.encode("ied 4 ½ months"))).containsExactly("ied", "\u01204", "\u0120", "\u00c2", "\u00bd", "\u0120months");
        // deepseek-coder: letters, punctuation, CJK runs and single digits, newlines alone
        Tokenizer ds = load(byteLevelGguf("ds.gguf", "deepseek-coder", w -> w));
        assertThat(String.join("|", pieces(ds, ds.encode("ab 12\n")))).isEqualTo("a|b|\u0120|1|2|\u010a");
        // every pre-tokenizer llama.cpp names loads
        for (String pre : List.of("deepseek-llm", "deepseek-v3", "falcon", "mpt", "refact", "command-r", "olmo", "dbrx", "smaug-bpe", "poro-chat",
                "chatglm-bpe", "viking", "jais", "tekken", "smollm", "codeshell", "bloom", "gpt3-finnish", "exaone", "chameleon", "minerva-7b",
                "gpt-4o", "superbpe", "trillion", "bailingmoe", "llama4", "pixtral", "seed-coder", "kimi-k2", "afmoe", "default")) {
            Tokenizer t = load(byteLevelGguf(pre + ".gguf", pre, w -> w));
            String text = "Hello, World! 12345 ied 4 ½ months\n\n  你好 <|end|>";
            assertThat(t.decode(t.encode(text))).as(pre).isEqualTo(text);
        }
    }

    @Test
    void controlTokensAreParsedOnlyWhenAsked() {
        Tokenizer t = load(byteLevelGguf("ctl.gguf", "gpt-2", w -> w));
        int end = t.tokenId("<|end|>");
        assertThat(t.encode("a<|end|>")).containsExactly(t.tokenId("a"), end);
        assertThat(t.encode("a<|end|>", false)).doesNotContain(end);
    }

    /**
     * llama.cpp's loader makes control tokens of end-of-generation and fill-in-the-middle texts whatever type the
     * file gives them (Qwen's vocabulary has "</s>" as an ordinary BPE token), unless a key names the kind's id,
     * and user-defined ones of gpt-oss's channel markers; end-of-generation and FIM pad/repo/separator tokens stop.
     */
    @Test
    void controlLookingTokensAreTypedByTheirTextAsLlamaCppDoes() {
        List<String> tok = new ArrayList<>();
        for (int b = 0; b < 256; b++) tok.add(String.valueOf(BpeTokenizer.BYTE_TO_CHAR[b]));
        List<String> extra = List.of("</s>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_pad|>", "<|channel|>");
        tok.addAll(extra);
        int[] types = new int[tok.size()];
        Arrays.fill(types, 1);
        types[tok.indexOf("<|channel|>")] = 3;
        Path p = dir.resolve("texts.gguf");
        new GgufWriter().putString("tokenizer.ggml.model", "gpt2").putString("tokenizer.ggml.pre", "qwen2")
                .putStringArray("tokenizer.ggml.tokens", tok.toArray(String[]::new)).putI32Array("tokenizer.ggml.token_type", types)
                .putStringArray("tokenizer.ggml.merges", new String[0])
                .putU32("tokenizer.ggml.fim_suf_token_id", tok.indexOf("<|fim_suffix|>")).write(p);
        Tokenizer t = load(p);
        int eos = tok.indexOf("</s>"), pre = tok.indexOf("<|fim_prefix|>"), suf = tok.indexOf("<|fim_suffix|>"), pad = tok.indexOf("<|fim_pad|>"),
                channel = tok.indexOf("<|channel|>");
        // promoted to control: matched whole only when parsing specials
        assertThat(t.encode("a</s>b")).containsExactly('a', eos, 'b');
        assertThat(t.encode("a</s>b", false)).doesNotContain(eos).hasSize(6);
        assertThat(t.encode("<|fim_prefix|><|fim_pad|>")).containsExactly(pre, pad);
        // a kind the file names keeps the file's type (ordinary here: bytes)
        assertThat(t.encode("<|fim_suffix|>")).doesNotContain(suf);
        // user-defined: matched even without parsing specials
        assertThat(t.encode("x<|channel|>y", false)).containsExactly('x', channel, 'y');
        assertThat(t.stopIds()).contains(eos, pad).doesNotContain(pre, suf, channel);
    }

    @Test
    void noneAndOutOfRangeSpecialIdsMeanTheDefault() {
        Tokenizer t = load(byteLevelGguf("none.gguf", "gpt-2", w -> w.putU32("tokenizer.ggml.padding_token_id", 0xFFFFFFFFL)
                .putU32("tokenizer.ggml.eos_token_id", 266).putU32("tokenizer.ggml.bos_token_id", 100000)));
        assertThat(t.padId()).isEqualTo(-1);
        assertThat(t.eosId()).isEqualTo(266);
        assertThat(t.bosId()).isEqualTo(11); // llama.cpp's gpt2 default
        Path bad = byteLevelGguf("badbos.gguf", "gpt-2", w -> w.putU32("tokenizer.ggml.bos_token_id", 0xFFFFFFFFL).putBool("tokenizer.ggml.add_bos_token", true));
        assertThat(load(bad).addBos()).isTrue(); // the default BOS (11) is in range
    }

    @Test
    void stories260KVocabularyLoadsWithItsNonePadding() {
        Tokenizer t = load(TestData.shared("models/stories260K/stories260K.gguf"));
        assertThat(t.padId()).isEqualTo(-1);
        assertThat(t.bosId()).isEqualTo(1);
        assertThat(t.decode(t.encode("Once upon a time"))).isEqualTo("Once upon a time");
    }

    @Test
    void wordPieceLikeLlamaCpp() {
        String[] tok = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "\u2581hello", "\u2581world", "\u2581un", "aff", "able", "\u2581!", "\u2581cafe", "\u2581\u4f60"};
        int[] types = {3, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
        Path p = dir.resolve("bert.gguf");
        new GgufWriter().putString("tokenizer.ggml.model", "bert").putStringArray("tokenizer.ggml.tokens", tok).putI32Array("tokenizer.ggml.token_type", types)
                .putU32("tokenizer.ggml.unknown_token_id", 1).putU32("tokenizer.ggml.bos_token_id", 2).putU32("tokenizer.ggml.seperator_token_id", 3)
                .putU32("tokenizer.ggml.padding_token_id", 0).write(p);
        Tokenizer t = load(p);
        assertThat(t).isInstanceOf(WordPieceTokenizer.class);
        // lowercased, accents stripped, punctuation and CJK split off, longest pieces first, unknown words → [UNK]
        assertThat(t.encode("Hello  WORLD! Unaffable Café 你 xyz")).containsExactly(4, 5, 9, 6, 7, 8, 10, 11, 1);
        assertThat(t.decode(new int[]{4, 5, 9})).isEqualTo("hello world !");
        // shown as llama.cpp's llama_detokenize shows it: the first word's space kept, " !" cleaned
        assertThat(t.detokenize(new int[]{4, 5, 9})).isEqualTo(" hello world!");
        // U+1611F (Unicode 16.0) is a mark to the JDK 25 but unassigned in llama.cpp's Unicode 15.1 tables: an unknown word, not a stripped accent
        assertThat(t.encode("hello \uD818\uDD1F world")).containsExactly(4, 1, 5);
        assertThat(t.bosId()).isEqualTo(2);
        assertThat(((WordPieceTokenizer) t).sepId()).isEqualTo(3);
    }

    /**
     * A SentencePiece-style BPE vocabulary (Gemma 4, Sarvam): specials, the 256 {@code <0xXX>} byte tokens, and
     * pieces with U+2581 for spaces whose merges can be followed on paper.
     */
    private Path spmBpeGguf(String file, String model, String pre, java.util.function.UnaryOperator<GgufWriter> extra) {
        List<String> tok = new ArrayList<>(List.of("<pad>", "<eos>", "<bos>", "<unk>"));
        List<Integer> ty = new ArrayList<>(List.of(3, 3, 3, 2));
        for (int b = 0; b < 256; b++) { tok.add(String.format("<0x%02X>", b)); ty.add(6); }
        String[] merges = {"h e", "l l", "he ll", "hell o", "\u2581 w", "\u2581w o", "\u2581wo r", "\u2581wor l", "\u2581worl d"};
        for (String piece : List.of("\u2581", "h", "e", "l", "o", "w", "r", "d", "\n", "\n\n")) { tok.add(piece); ty.add(1); }
        for (String m : merges) { tok.add(m.replace(" ", "")); ty.add(1); }
        Path p = dir.resolve(file);
        GgufWriter w = new GgufWriter().putString("tokenizer.ggml.model", model)
                .putStringArray("tokenizer.ggml.tokens", tok.toArray(String[]::new)).putI32Array("tokenizer.ggml.token_type", ty.stream().mapToInt(Integer::intValue).toArray())
                .putStringArray("tokenizer.ggml.merges", merges).putU32("tokenizer.ggml.bos_token_id", 2).putU32("tokenizer.ggml.eos_token_id", 1);
        if (pre != null) w.putString("tokenizer.ggml.pre", pre);
        extra.apply(w).write(p);
        return p;
    }

    @Test
    void gemma4MergesUtf8TextWithSpacesAsU2581() {
        // model gemma4 takes the gemma4 pre-tokenizer whatever the key says, and always adds its BOS
        Tokenizer t = load(spmBpeGguf("gemma4.gguf", "gemma4", "gpt-2", w -> w.putBool("tokenizer.ggml.add_bos_token", false)));
        assertThat(t.addBos()).isTrue();
        assertThat(t.bosId()).isEqualTo(2);
        // "hello▁world" | "\n\n" | "hi▁é": merges by rank over the whole line; a run of newlines that is a token is
        // taken whole (no "\n \n" merge exists); i and é are no tokens: their UTF-8 bytes
        String text = "hello world\n\nhi é";
        int[] ids = t.encode(text);
        assertThat(pieces(t, ids)).containsExactly("hello", "\u2581world", "\n\n", "h", "<0x69>", "\u2581", "<0xC3>", "<0xA9>");
        assertThat(t.decode(ids)).isEqualTo(text);
        // three newlines are no token: plain merging, one per newline
        assertThat(pieces(t, t.encode("\n\n\n"))).containsExactly("\n", "\n", "\n");
        // the same for granite-embed-multi-311m, llama.cpp's other name for the gemma4 pre-tokenizer
        Tokenizer g = load(spmBpeGguf("granite.gguf", "gpt2", "granite-embed-multi-311m", w -> w));
        assertThat(g.encode(text)).containsExactly(ids);
        assertThat(g.addBos()).isTrue();
        // a Gemma 4 vocabulary without a BOS cannot add one: one line, as llama.cpp refuses it
        Path noBos = dir.resolve("gemma4-nobos.gguf");
        new GgufWriter().putString("tokenizer.ggml.model", "gemma4").putStringArray("tokenizer.ggml.tokens", new String[]{"a", "b"})
                .putStringArray("tokenizer.ggml.merges", new String[0]).write(noBos);
        try (GgufFile f = GgufFile.open(noBos)) {
            assertThatThrownBy(() -> GgufTokenizers.fromGguf(f)).isInstanceOf(LongspanException.class)
                    .hasMessageContaining("gemma4-nobos.gguf").hasMessageContaining("bos_token_id is not set").hasMessageNotContaining("\n");
        }
    }

    @Test
    void sarvamMoeIsGemma4sSplitWithoutItsNewlineRuleOrForcedBos() {
        Tokenizer t = load(spmBpeGguf("sarvam.gguf", "gpt2", "sarvam-moe", w -> w));
        assertThat(t.addBos()).isFalse();
        int[] ids = t.encode("hello world\n\nhi é");
        assertThat(pieces(t, ids)).containsExactly("hello", "\u2581world", "\n", "\n", "h", "<0x69>", "\u2581", "<0xC3>", "<0xA9>");
        assertThat(t.decode(ids)).isEqualTo("hello world\n\nhi é");
    }

    @Test
    void whitespaceModelTokenizesTheRunsBetweenWhitespace() {
        // tokenizer model "whitespace" with pre "whitespace" (jina-embeddings-v2-base-zh): whitespace dropped, no lowercasing
        Tokenizer t = load(spmBpeGguf("ws.gguf", "whitespace", "whitespace", w -> w));
        assertThat(pieces(t, t.encode("hello \t wo\u3000Hé"))).containsExactly("hello", "w", "o", "<0x48>", "<0xC3>", "<0xA9>");
        // the normalizer's lowercasing when the file asks for it
        Tokenizer lower = load(spmBpeGguf("wsl.gguf", "whitespace", "whitespace", w -> w.putBool("tokenizer.ggml.normalizer.lowercase", true)));
        assertThat(pieces(lower, lower.encode("HELLO  Dd"))).containsExactly("hello", "d", "d");
        // pre "whitespace" under a gpt2 model: the regex \S+ keeps the spaces between words as words of their own
        Tokenizer gpt2 = load(spmBpeGguf("wsg.gguf", "gpt2", "whitespace", w -> w));
        assertThat(pieces(gpt2, gpt2.encode("hello  he"))).containsExactly("hello", "<0x20>", "<0x20>", "he");
        assertThat(gpt2.decode(gpt2.encode("hello  he"))).isEqualTo("hello  he");
    }

    @Test
    void hybridDnaCutsTaggedSequencesIntoSixMers() {
        List<String> tok = new ArrayList<>();
        for (int b = 0; b < 256; b++) tok.add(String.valueOf(BpeTokenizer.BYTE_TO_CHAR[b]));
        tok.addAll(List.of("<dna>", "</dna>", "<oov>", "ACGTAC\uE000", "GTAAAA\uE000", "CCCCCC\uE000", "CCCCCC"));
        int oov = 258, acgtac = 259, gtaaaa = 260, cccccc = 261, text = 262;
        Path p = dir.resolve("dna.gguf");
        new GgufWriter().putString("tokenizer.ggml.model", "hybriddna").putString("tokenizer.ggml.pre", "gpt-2")
                .putStringArray("tokenizer.ggml.tokens", tok.toArray(String[]::new)).putStringArray("tokenizer.ggml.merges", new String[]{"C C", "CC CC", "CCCC CC"})
                .write(p);
        Tokenizer t = load(p);
        // lower case is upper-cased; the last k-mer is padded with A; a k-mer the vocabulary lacks is <oov>; outside the
        // tags plain BPE, where the same letters are the unmarked token
        int[] ids = t.encode("x<dna>acgtacCCCCCCnnnnnnGT</dna>CCCCCC");
        assertThat(ids).containsExactly('x', 256, acgtac, cccccc, oov, gtaaaa, 257, text);
        // the k-mers print as their bases
        assertThat(t.decode(new int[]{256, acgtac, cccccc, 257})).isEqualTo("<dna>ACGTACCCCCCC</dna>");
        // an open tag runs to the end of the text
        assertThat(t.encode("<dna>ACGTACccc")).containsExactly(256, acgtac, oov);
    }

    @Test
    void everyPreTokenizerLlamaCppNamesIsKnown() {
        // the tokenizer.ggml.pre names of llama.cpp's src/llama-vocab.cpp (newest snapshot read for this list)
        List<String> llamaCpp = List.of("default", "minicpm5", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
                "lfm2", "jina-v5-nano", "deepseek-llm", "deepseek-coder", "deepseek-v3", "spark2_5", "youtu", "falcon", "mpt", "starcoder", "gpt-2",
                "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "jais-2", "gemma4",
                "granite-embed-multi-311m", "sarvam-moe", "jina-v1-en", "jina-v2-code", "roberta-bpe", "whitespace", "refact", "command-r", "qwen2",
                "deepseek-r1-qwen", "kormo", "f2llmv2", "qwen35", "stablelm2", "olmo", "dbrx", "smaug-bpe", "poro-chat", "glm4", "chatglm-bpe",
                "viking", "jais", "tekken", "smollm", "codeshell", "bloom", "gpt3-finnish", "exaone", "exaone4", "exaone-moe", "chameleon",
                "minerva-7b", "megrez", "gpt-4o", "llama4", "kanana2", "talkie", "granite-embed-multi-97m", "tiny_aya", "cohere2moe", "superbpe",
                "trillion", "granite-docling", "bailingmoe", "bailingmoe2", "llada-moe", "seed-coder", "hunyuan", "hunyuan-dense", "hy_v4",
                "joyai-llm", "kimi-k2", "ufakzeka", "grok-2", "afmoe", "laguna", "minimax-m2", "solar-open", "mellum2");
        assertThat(LlamaPreTokenizer.names()).containsAll(llamaCpp);
        for (String pre : List.of("gemma4", "granite-embed-multi-311m", "sarvam-moe", "whitespace")) {
            Tokenizer t = load(spmBpeGguf(pre + ".gguf", "gpt2", pre, w -> w));
            assertThat(t.decode(t.encode("hello world\n\nhe"))).as(pre).isEqualTo("hello world\n\nhe");
        }
    }
}

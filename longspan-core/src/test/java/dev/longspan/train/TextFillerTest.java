package dev.longspan.train;

import dev.longspan.io.Json;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** train.synthetic.text_filler: passkey haystacks streamed from real text, one file held out. */
class TextFillerTest {
    @TempDir
    Path dir;

    // each file's text is made of its own letters, so a haystack byte tells which file it came from
    static String text(String letters, int words, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        StringBuilder sb = new StringBuilder();
        for (int w = 0; w < words; w++) {
            int len = 1 + r.nextInt(7);
            for (int i = 0; i < len; i++) sb.append(letters.charAt(r.nextInt(letters.length())));
            sb.append(w % 11 == 10 ? ".\n" : " ");
        }
        return sb.toString();
    }

    Path books() throws IOException {
        Path b = Files.createDirectories(dir.resolve("books"));
        Files.writeString(b.resolve("a.txt"), text("abcdef", 3000, 1));
        Files.writeString(b.resolve("g.txt"), text("ghijkl", 2000, 2));
        Files.writeString(b.resolve("m.txt"), text("mnopqr", 1000, 3));
        Files.writeString(b.resolve("held.txt"), text("XYZ", 2000, 4));  // never to be read
        Files.writeString(b.resolve("README.md"), "not text to train on: QQQ");
        return b;
    }

    Path kjv() throws IOException {
        return Files.writeString(dir.resolve("kjv.txt"), "In the beginning God created the heaven and the earth. ".repeat(80));
    }

    TrainConfig config(String textFiller) {
        String json = """
                {"model": {"vocab_size": 259, "dim": 16, "layers": 1, "heads": 2, "kv_heads": 2, "ffn_dim": 32,
                           "attention": "dense", "context_length": 512},
                 "train": {"seq_len": 512, "batch": 2, "steps": 10, "seed": 7, "held_out": 0.1,
                           "synthetic": {"passkey": 1.0, "kv": 0.0, "real_filler": false, "text_filler": %s}}}""".formatted(textFiller);
        return TrainConfig.fromJson(Json.parseObject(json, "tf.json"), "tf.json");
    }

    String filler(Path books, double share) {
        return "{\"files\": [\"" + books + "\"], \"held_out\": \"" + books.resolve("held.txt") + "\", \"share\": " + share + "}";
    }

    static String str(int[] tokens) {
        StringBuilder s = new StringBuilder();
        for (int t : tokens) s.append((char) t);
        return s.toString();
    }

    @Test
    void samplesAreSeededAndDeterministic() throws IOException {
        Path b = books();
        TrainConfig tc = config(filler(b, 1.0));
        try (TextCorpus c = new TextCorpus(List.of(kjv()), 0.1)) {
            Trainer t1 = new Trainer(tc, c, dir.resolve("r1"), new Trainer.Listener() {});
            Trainer t2 = new Trainer(tc, c, dir.resolve("r2"), new Trainer.Listener() {});
            int n = 512;
            int[] a = new int[n + 1], at = new int[n], bb = new int[n + 1], bt = new int[n];
            java.util.Set<String> distinct = new java.util.HashSet<>();
            for (int s = 0; s < 20; s++) {
                t1.sample(s, 1, n, a, at);
                t2.sample(s, 1, n, bb, bt);
                assertThat(bb).containsExactly(a);
                assertThat(bt).containsExactly(at);
                distinct.add(str(a));
            }
            assertThat(distinct).hasSize(20);
        }
    }

    @Test
    void theHaystackIsOneStreamOfABookAroundTheNeedle() throws IOException {
        Path b = books();
        TrainConfig tc = config(filler(b, 1.0));
        List<String> books = List.of(Files.readString(b.resolve("a.txt")), Files.readString(b.resolve("g.txt")), Files.readString(b.resolve("m.txt")));
        try (TextCorpus c = new TextCorpus(List.of(kjv()), 0.1)) {
            Trainer t = new Trainer(tc, c, dir.resolve("r"), new Trainer.Listener() {});
            int n = 700;
            int[] tok = new int[n + 1], tgt = new int[n];
            int[] fromBook = new int[3];
            for (int s = 0; s < 60; s++) {
                t.sample(s, 0, n, tok, tgt);
                String p = str(tok);
                assertThat(p).startsWith(PasskeyTask.TASK);
                int at = p.indexOf(" The pass key is ");
                String key = p.substring(at + 17, at + 22);
                String needle = PasskeyTask.needle(key);
                assertThat(p.indexOf(needle)).isEqualTo(at);
                assertThat(p.indexOf(needle, at + 1)).isEqualTo(-1);
                assertThat(p).endsWith(PasskeyTask.QUESTION + " " + key + ".");
                // the filler before and after the needle, joined, is one piece of one book (wrapping at its end)
                String hay = p.substring(PasskeyTask.TASK.length(), at) + p.substring(at + needle.length(), p.length() - PasskeyTask.QUESTION.length() - 7);
                int found = -1;
                for (int k = 0; k < 3; k++) if ((books.get(k) + books.get(k)).contains(hay)) found = k;
                assertThat(found).as("sample %d's haystack is a contiguous piece of one book", s).isNotNegative();
                fromBook[found]++;
                assertThat(java.util.Arrays.stream(tgt).filter(x -> x >= 0).count()).isEqualTo(7);
            }
            // offsets are uniform over the bytes: every book is drawn, the longest most often
            assertThat(java.util.Arrays.stream(fromBook).min().orElseThrow()).isPositive();
            assertThat(fromBook[0]).isGreaterThan(fromBook[2]);
        }
    }

    @ParameterizedTest
    @ValueSource(doubles = {0, 0.25, 0.5, 0.75, 1})
    void theNeedleSitsAtTheRequestedDepthOfATextHaystack(double depth) throws IOException {
        HaystackText h = HaystackText.open(List.of(books()), dir.resolve("books/held.txt"), "tf");
        int length = 2000;
        PasskeyTask.Prompt p = PasskeyTask.build("12345", length, depth, h.stream(new SplittableRandom(3)));
        String s = new String(p.prompt(), StandardCharsets.US_ASCII);
        int fillerLen = length - PasskeyTask.minimumLength("12345");
        assertThat(p.needleAt()).isEqualTo(PasskeyTask.TASK.length() + (int) Math.round(depth * fillerLen));
        assertThat(s.substring(p.needleAt())).startsWith(PasskeyTask.needle("12345"));
        assertThat(s).hasSize(length).endsWith(PasskeyTask.QUESTION);
    }

    @Test
    void theHeldOutBookIsNeverRead() throws IOException {
        Path b = books();
        HaystackText h = HaystackText.open(List.of(b), b.resolve("held.txt"), "tf");
        assertThat(h.files()).extracting(p -> p.getFileName().toString()).containsExactly("a.txt", "g.txt", "m.txt");
        TrainConfig tc = config(filler(b, 1.0));
        try (TextCorpus c = new TextCorpus(List.of(kjv()), 0.1)) {
            Trainer t = new Trainer(tc, c, dir.resolve("r"), new Trainer.Listener() {});
            int n = 512;
            int[] tok = new int[n + 1], tgt = new int[n];
            for (int s = 0; s < 400; s++) {
                t.sample(s, s % 2, n, tok, tgt);
                String p = str(tok);
                // held.txt is written in X, Y, Z; README.md holds Q (the task, needle and question hold none of them)
                assertThat(p).doesNotContain("X").doesNotContain("Y").doesNotContain("Z").doesNotContain("Q");
            }
        }
        // naming it among the files, giving it as --data, or naming a file that is not there are refused
        assertThatThrownBy(() -> HaystackText.open(List.of(b.resolve("a.txt"), b.resolve("../books/held.txt")), b.resolve("held.txt"), "tf"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("tf.files").hasMessageContaining("held-out");
        assertThatThrownBy(() -> HaystackText.open(List.of(b), b.resolve("missing.txt"), "tf"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("tf.held_out").hasMessageContaining("missing.txt");
        try (TextCorpus c = new TextCorpus(List.of(kjv(), b.resolve("held.txt")), 0.1)) {
            assertThatThrownBy(() -> new Trainer(tc, c, dir.resolve("r3"), new Trainer.Listener() {}))
                    .isInstanceOf(LongspanException.class).hasMessageContaining("--data").hasMessageContaining("held.txt");
        }
    }

    @Test
    void theShareSplitsTheHaystacksAndOlderRunsKeepTheirSamples() throws IOException {
        Path b = books();
        String plain = """
                {"model": {"vocab_size": 259, "dim": 16, "layers": 1, "heads": 2, "kv_heads": 2, "ffn_dim": 32,
                           "attention": "dense", "context_length": 512},
                 "train": {"seq_len": 512, "batch": 2, "steps": 10, "seed": 7, "held_out": 0.1,
                           "synthetic": {"passkey": 1.0, "kv": 0.0, "real_filler": false}}}""";
        TrainConfig without = TrainConfig.fromJson(Json.parseObject(plain, "p.json"), "p.json");
        TrainConfig half = config(filler(b, 0.5));
        try (TextCorpus c = new TextCorpus(List.of(kjv()), 0.1)) {
            Trainer t = new Trainer(half, c, dir.resolve("r"), new Trainer.Listener() {});
            Trainer old = new Trainer(without, c, dir.resolve("o"), new Trainer.Listener() {});
            int n = 512, text = 0;
            int[] tok = new int[n + 1], tgt = new int[n];
            for (int s = 0; s < 200; s++) {
                t.sample(s, 0, n, tok, tgt);
                if (!str(tok).contains(PasskeyTask.FILLER)) text++;
            }
            assertThat(text).isBetween(70, 130);
            // without text_filler the sample is what it was before the option existed: the standard filler
            old.sample(3, 1, n, tok, tgt);
            SplittableRandom r = new SplittableRandom(Trainer.mix(7, 3, 1));
            r.nextDouble();
            int[] want = new int[n + 1], wantT = new int[n];
            PasskeyTask.trainingSample(r, n, PasskeyTask.Filler.standard(), want, wantT);
            assertThat(tok).containsExactly(want);
        }
    }

    @Test
    void configRoundTripsAndErrorsNameTheField() throws IOException {
        Path b = books();
        TrainConfig tc = config(filler(b, 0.25));
        assertThat(tc.textFiller().share()).isEqualTo(0.25);
        assertThat(tc.textFiller().heldOut()).endsWith("held.txt");
        TrainConfig again = TrainConfig.fromJson(Json.parseObject(Json.write(tc.toJson()), "again"), "again");
        assertThat(again.textFiller()).isEqualTo(tc.textFiller());
        assertThatThrownBy(() -> config("{\"files\": [], \"held_out\": \"h.txt\"}")).hasMessageContaining("train.synthetic.text_filler.files");
        assertThatThrownBy(() -> config("{\"files\": [\"x\"]}")).hasMessageContaining("train.synthetic.text_filler.held_out");
        assertThatThrownBy(() -> config("{\"files\": [\"x\"], \"held_out\": \"h.txt\", \"share\": 1.5}")).hasMessageContaining("text_filler.share");
        assertThatThrownBy(() -> config("{\"files\": [\"x\"], \"held_out\": \"h.txt\", \"shares\": 1}")).hasMessageContaining("'shares'");
        assertThatThrownBy(() -> config("7")).hasMessageContaining("text_filler").hasMessageContaining("expected an object");
        assertThatThrownBy(() -> new Trainer(config("{\"files\": [\"" + dir.resolve("nope.txt") + "\"], \"held_out\": \"" + b.resolve("held.txt") + "\"}"),
                new TextCorpus(List.of(kjv()), 0.1), dir.resolve("r"), new Trainer.Listener() {}))
                .isInstanceOf(LongspanException.class).hasMessageContaining("text_filler.files").hasMessageContaining("nope.txt");
    }
}

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
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** train.synthetic.numbers and .technical: decoy numbers written over passkey haystacks. */
class DecoyNumbersTest {
    @TempDir
    Path dir;

    static final Pattern NUMBER = Pattern.compile("[0-9]+");

    @ParameterizedTest
    @ValueSource(doubles = {2, 10, 40})
    void aboutTheRequestedNumbersPerKilobyteAtWordStartsTheRestUntouched(double perKb) {
        int n = 50_000;
        byte[] plain = new byte[n], decoyed = new byte[n];
        PasskeyTask.Filler.standard().fill(plain, 0, n);
        PasskeyTask.Filler.standard().withNumbers(new SplittableRandom(11), perKb).fill(decoyed, 0, n);
        String s = new String(decoyed, StandardCharsets.US_ASCII);
        int numbers = 0, fives = 0;
        Matcher m = NUMBER.matcher(s);
        while (m.find()) {
            numbers++;
            if (m.end() - m.start() == 5) fives++;
            // a number starts a word (the standard filler has no digits, so every digit is a decoy's)
            assertThat(m.start() == 0 || s.charAt(m.start() - 1) == ' ').as("number at %d starts a word", m.start()).isTrue();
        }
        // overlapping draws merge or overwrite: a little under count, never above it
        int count = (int) Math.round(n * perKb / 1000);
        assertThat(numbers).isBetween((int) (0.8 * count), count);
        assertThat(fives).isGreaterThan(numbers / 5);
        // every byte that is not a digit is the filler's own byte
        for (int i = 0; i < n; i++) if (decoyed[i] < '0' || decoyed[i] > '9') assertThat(decoyed[i]).isEqualTo(plain[i]);
    }

    @Test
    void writesOnlyInsideItsRangeAndIsSeeded() {
        byte[] a = seededFillInside(r -> PasskeyTask.Filler.standard().withNumbers(r, 30), 5, 3000, 1000, 500);
        assertThat(new String(a, 1000, 500, StandardCharsets.US_ASCII)).containsPattern("[0-9]");
    }

    /**
     * Bytes [from, from+n) of a {@code '#'}-filled array of {@code len} bytes filled by the filler
     * {@code make} builds from a generator seeded {@code seed}; asserts that a second fill from the same
     * seed gives the same bytes and that nothing outside the range was written.
     */
    static byte[] seededFillInside(java.util.function.Function<SplittableRandom, PasskeyTask.Filler> make, long seed, int len, int from, int n) {
        byte[] a = new byte[len], b = new byte[len];
        java.util.Arrays.fill(a, (byte) '#');
        java.util.Arrays.fill(b, (byte) '#');
        make.apply(new SplittableRandom(seed)).fill(a, from, n);
        make.apply(new SplittableRandom(seed)).fill(b, from, n);
        assertThat(b).as("seeded").containsExactly(a);
        for (int i = 0; i < len; i++) if (i < from || i >= from + n) assertThat(a[i]).as("byte %d", i).isEqualTo((byte) '#');
        return a;
    }

    TrainConfig config(String numbers) {
        String json = """
                {"model": {"vocab_size": 259, "dim": 16, "layers": 1, "heads": 2, "kv_heads": 2, "ffn_dim": 32,
                           "attention": "dense", "context_length": 512},
                 "train": {"seq_len": 512, "batch": 2, "steps": 10, "seed": 7, "held_out": 0.1,
                           "synthetic": {"passkey": 1.0, "kv": 0.0, "real_filler": false%s}}}""".formatted(numbers);
        return TrainConfig.fromJson(Json.parseObject(json, "n.json"), "n.json");
    }

    @Test
    void trainingSamplesCarryDecoysButKeepTheKeyAndItsTargets() throws IOException {
        Path kjv = Files.writeString(dir.resolve("kjv.txt"), "In the beginning God created the heaven and the earth. ".repeat(80));
        try (TextCorpus c = new TextCorpus(List.of(kjv), 0.1)) {
            Trainer with = new Trainer(config(", \"numbers\": 20"), c, dir.resolve("w"), new Trainer.Listener() {});
            Trainer without = new Trainer(config(""), c, dir.resolve("o"), new Trainer.Listener() {});
            int n = 512;
            int[] tok = new int[n + 1], tgt = new int[n];
            for (int s = 0; s < 30; s++) {
                with.sample(s, 0, n, tok, tgt);
                String p = TextFillerTest.str(tok);
                int at = p.indexOf(" The pass key is ");
                String key = p.substring(at + 17, at + 22);
                assertThat(p).contains(PasskeyTask.needle(key)).endsWith(PasskeyTask.QUESTION + " " + key + ".");
                String hay = p.substring(PasskeyTask.TASK.length(), at) + p.substring(at + PasskeyTask.needle(key).length(), p.length() - PasskeyTask.QUESTION.length() - 7);
                assertThat(hay).containsPattern("[0-9]");
                assertThat(java.util.Arrays.stream(tgt).filter(x -> x >= 0).count()).isEqualTo(7);
                // numbers = 0 (absent) leaves the standard filler without a digit
                without.sample(s, 0, n, tok, tgt);
                String q = TextFillerTest.str(tok);
                int qa = q.indexOf(" The pass key is ");
                assertThat(q.substring(0, qa)).doesNotContainPattern("[0-9]");
            }
        }
    }

    @Test
    void configRoundTripsAndBadValuesNameTheField() {
        TrainConfig tc = config(", \"numbers\": 8");
        assertThat(tc.decoyNumbers()).isEqualTo(8.0);
        TrainConfig back = TrainConfig.fromJson(Json.parseObject(Json.write(tc.toJson()), "b.json"), "b.json");
        assertThat(back.decoyNumbers()).isEqualTo(8.0);
        assertThat(config("").decoyNumbers()).isZero();
        assertThat(((java.util.Map<?, ?>) ((java.util.Map<?, ?>) config("").toJson().get("train")).get("synthetic")).containsKey("numbers")).isFalse();
        for (String bad : List.of("-1", "101", "\"many\"")) {
            assertThatThrownBy(() -> config(", \"numbers\": " + bad)).isInstanceOf(LongspanException.class)
                    .hasMessageContaining("synthetic.numbers");
        }
    }
    @Test
    void technicalSnippetsAreNumbersInTheirShapesAtWordStartsInsideTheRange() {
        byte[] a = seededFillInside(r -> PasskeyTask.Filler.standard().withTechnical(r, 8), 3, 60_000, 1000, 50_000);
        String s = new String(a, 1000, 50_000, StandardCharsets.US_ASCII);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            assertThat(c == '\t' || c == '\n' || (c >= 32 && c < 127)).as("printable ASCII or tab/newline at %d", i).isTrue();
        }
        // the shapes: section references, versions, dates, times, issue numbers, tab rows
        assertThat(s).containsPattern("\\|[0-9]{2}\\.[0-9]\\|").containsPattern("v[0-9]\\.[0-9]+\\.[0-9]+")
                .containsPattern("(19|20)[0-9]{2}-[01][0-9]-[0-3][0-9]").containsPattern("[0-2][0-9]:[0-5][0-9]")
                .containsPattern("gh-[0-9]{5,6}: ").containsPattern("\t[0-9]+\t[0-9]+\t[0-9]+\n").contains(":set tw=");
        // about 8 per KB: 400 snippets drawn; each starts a word and holds a digit, except the tab runs
        int digitsRuns = 0;
        Matcher m = NUMBER.matcher(s);
        while (m.find()) digitsRuns++;
        assertThat(digitsRuns).isBetween(300, 1600);
    }

    @Test
    void technicalRoundTripsAndBadValuesNameTheField() throws IOException {
        TrainConfig tc = config(", \"technical\": 5");
        assertThat(tc.technicalNumbers()).isEqualTo(5.0);
        TrainConfig back = TrainConfig.fromJson(Json.parseObject(Json.write(tc.toJson()), "b.json"), "b.json");
        assertThat(back.technicalNumbers()).isEqualTo(5.0);
        assertThat(config("").technicalNumbers()).isZero();
        for (String bad : List.of("-1", "101", "\"lots\"")) {
            assertThatThrownBy(() -> config(", \"technical\": " + bad)).isInstanceOf(LongspanException.class)
                    .hasMessageContaining("synthetic.technical");
        }
        // training samples keep their key and its targets among the snippets
        Path kjv = Files.writeString(dir.resolve("kjv.txt"), "In the beginning God created the heaven and the earth. ".repeat(80));
        try (TextCorpus c = new TextCorpus(List.of(kjv), 0.1)) {
            Trainer with = new Trainer(tc, c, dir.resolve("t"), new Trainer.Listener() {});
            int n = 1024;
            int[] tok = new int[n + 1], tgt = new int[n];
            for (int step = 0; step < 20; step++) {
                with.sample(step, 0, n, tok, tgt);
                String p = TextFillerTest.str(tok);
                int at = p.indexOf(" The pass key is ");
                String key = p.substring(at + 17, at + 22);
                assertThat(p).contains(PasskeyTask.needle(key)).endsWith(PasskeyTask.QUESTION + " " + key + ".");
                assertThat(java.util.Arrays.stream(tgt).filter(x -> x >= 0).count()).isEqualTo(7);
            }
        }
    }
    /**
     * The committed recipes (stages 6–12) were trained on these decoys: the same seed must keep
     * giving the same bytes (the draws' order included), or the recipe no longer reproduces the
     * shipped weights. The digest was taken from the code that trained them.
     */
    @Test
    void decoysAreTheBytesTheRecipesTrainedOn() throws Exception {
        byte[] b = new byte[200_000];
        PasskeyTask.Filler.standard().withNumbers(new SplittableRandom(42), 10).fill(b, 100, 150_000);
        PasskeyTask.Filler.standard().withNumbers(new SplittableRandom(43), 37).fill(b, 150_100, 49_000);
        String digest = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(b));
        assertThat(digest).isEqualTo("125bb9c30edd5e5d1d33d8cfafb41bf2e212f5603388ee5bcdfa63ae149fe80f");
    }
    @Test
    void nearMissesAreTheKeyWithOneDigitChangedOutsideTheNeedle() {
        int n = 4096, seen = 0;
        for (int seed = 0; seed < 40; seed++) {
            int[] tok = new int[n + 1], tgt = new int[n], tok0 = new int[n + 1], tgt0 = new int[n];
            PasskeyTask.trainingSample(new SplittableRandom(seed), n, PasskeyTask.Filler.standard(), 6, tok, tgt);
            String p = TextFillerTest.str(tok);
            int at = p.indexOf(" The pass key is ");
            String key = p.substring(at + 17, at + 22);
            assertThat(p).contains(PasskeyTask.needle(key)).endsWith(PasskeyTask.QUESTION + " " + key + ".");
            assertThat(java.util.Arrays.stream(tgt).filter(x -> x >= 0).count()).isEqualTo(7);
            String hay = p.substring(PasskeyTask.TASK.length(), at) + "|" + p.substring(at + PasskeyTask.needle(key).length(), p.length() - PasskeyTask.QUESTION.length() - 7);
            Matcher m = NUMBER.matcher(hay);
            while (m.find()) {
                String miss = m.group();
                if (miss.length() != 5) continue;      // two misses that met (a word of four letters or fewer between)
                int differ = 0;
                for (int i = 0; i < 5; i++) if (miss.charAt(i) != key.charAt(i)) differ++;
                assertThat(differ).as("%s against key %s", miss, key).isEqualTo(1);
                seen++;
            }
            // none: the sample of the plain overload, draw for draw
            PasskeyTask.trainingSample(new SplittableRandom(seed), n, PasskeyTask.Filler.standard(), 0, tok, tgt);
            PasskeyTask.trainingSample(new SplittableRandom(seed), n, PasskeyTask.Filler.standard(), tok0, tgt0);
            assertThat(tok).containsExactly(tok0);
        }
        assertThat(seen).as("near misses written (some met another or would touch the needle)").isBetween(150, 240);
    }

    @Test
    void nearMissRoundTripsAndBadValuesNameTheField() {
        TrainConfig tc = config(", \"near_miss\": 4");
        assertThat(tc.nearMisses()).isEqualTo(4);
        TrainConfig back = TrainConfig.fromJson(Json.parseObject(Json.write(tc.toJson()), "b.json"), "b.json");
        assertThat(back.nearMisses()).isEqualTo(4);
        assertThat(config("").nearMisses()).isZero();
        for (String bad : List.of("-1", "1001", "2.5", "\"some\"")) {
            assertThatThrownBy(() -> config(", \"near_miss\": " + bad)).isInstanceOf(LongspanException.class)
                    .hasMessageContaining("synthetic.near_miss");
        }
    }
    @Test
    void marksAreFencedDigitsInsideTheRangeSeeded() {
        byte[] a = seededFillInside(r -> PasskeyTask.Filler.standard().withMarks(r, 20), 8, 40_000, 500, 30_000);
        String s = new String(a, 500, 30_000, StandardCharsets.US_ASCII);
        // the standard filler has no digits: every digit run is a mark's, fenced by its punctuation
        Matcher m = Pattern.compile("[0-9]+(\\.[0-9]+)?").matcher(s);
        int marks = 0, fenced = 0;
        while (m.find()) {
            marks++;
            if (m.end() < s.length() && "*|=~#<>[]()_-+:".indexOf(s.charAt(m.end())) >= 0) fenced++;
        }
        assertThat(marks).as("about 20 per KB: 600 drawn, some merged").isBetween(400, 600);
        assertThat(fenced).as("closed by a fence").isGreaterThan(marks * 9 / 10);
        assertThat(s).contains("*\t").containsPattern("[0-9]\\.[0-9]");
        for (int i = 0; i < 200; i++) assertThat(PasskeyTask.markSnippet(new SplittableRandom(i))).matches("[^0-9]?[0-9]{1,2}(\\.?[0-9]{1,2})?[^0-9][\t \n]*");
    }

    @Test
    void marksRoundTripAndBadValuesNameTheField() {
        TrainConfig tc = config(", \"marks\": 20");
        assertThat(tc.marks()).isEqualTo(20.0);
        assertThat(TrainConfig.fromJson(Json.parseObject(Json.write(tc.toJson()), "b.json"), "b.json").marks()).isEqualTo(20.0);
        assertThat(config("").marks()).isZero();
        for (String bad : List.of("-1", "101", "\"x\"")) {
            assertThatThrownBy(() -> config(", \"marks\": " + bad)).isInstanceOf(LongspanException.class).hasMessageContaining("synthetic.marks");
        }
    }

    @Test
    void tablesCoverAboutTheShareInsideTheRangeSeeded() {
        int n = 60_000;
        byte[] a = seededFillInside(r -> PasskeyTask.Filler.standard().withTables(r, 0.3), 3, n + 2000, 1000, n);
        String s = new String(a, 1000, n, StandardCharsets.US_ASCII);
        long digits = s.chars().filter(Character::isDigit).count();
        // the standard filler has no digits: every digit is a table's; a table is about a third digits
        // (the rest spaces, units, words, headers), and blocks drawn at random places overlap, so a
        // share of 0.3 leaves 5-15 % of the bytes digits
        assertThat(digits).as("digits in 60,000 bytes").isBetween(n * 5L / 100, n * 15L / 100);
        assertThat(s).containsPattern("\\n {0,12}[0-9-]").containsPattern("[0-9]   +[0-9]").containsPattern("[0-9]{5}");
        // the filler's own text is still there between the tables
        assertThat(s).contains(PasskeyTask.FILLER.substring(0, 30));
        // a short stretch (the few bytes between a needle and the question) and share 1
        byte[] t = seededFillInside(r -> PasskeyTask.Filler.standard().withTables(r, 1.0), 4, 40, 10, 7);
        assertThat(new String(t, 10, 7, StandardCharsets.US_ASCII)).doesNotContain(PasskeyTask.FILLER.substring(0, 7));
        // share 0 writes nothing over the filler
        byte[] z = seededFillInside(r -> PasskeyTask.Filler.standard().withTables(r, 0), 5, 3000, 100, 2000);
        byte[] plain = new byte[3000];
        java.util.Arrays.fill(plain, (byte) '#');
        PasskeyTask.Filler.standard().fill(plain, 100, 2000);
        assertThat(z).containsExactly(plain);
        for (int i = 0; i < 300; i++) assertThat(PasskeyTask.tableLine(new SplittableRandom(i))).doesNotContain("\n").matches("[ -~]+");
    }

    @Test
    void tablesOftenStandRightBesideTheNeedleAndKeepTheKeyAndItsTargets() throws IOException {
        Path kjv = Files.writeString(dir.resolve("kjv.txt"), "In the beginning God created the heaven and the earth. ".repeat(80));
        try (TextCorpus c = new TextCorpus(List.of(kjv), 0.1)) {
            Trainer with = new Trainer(config(", \"tables\": 0.3"), c, dir.resolve("w"), new Trainer.Listener() {});
            int n = 512, beside = 0, samples = 200;
            int[] tok = new int[n + 1], tgt = new int[n];
            for (int s = 0; s < samples; s++) {
                with.sample(s, 0, n, tok, tgt);
                String p = TextFillerTest.str(tok);
                int at = p.indexOf(" The pass key is ");
                String key = p.substring(at + 17, at + 22);
                assertThat(p).startsWith(PasskeyTask.TASK).contains(PasskeyTask.needle(key)).endsWith(PasskeyTask.QUESTION + " " + key + ".");
                assertThat(java.util.Arrays.stream(tgt).filter(x -> x >= 0).count()).isEqualTo(7);
                int after = at + PasskeyTask.needle(key).length();
                String near = p.substring(Math.max(PasskeyTask.TASK.length(), at - 16), at) + p.substring(after, Math.min(after + 16, p.length() - PasskeyTask.QUESTION.length() - 7));
                if (near.chars().anyMatch(Character::isDigit)) beside++;
            }
            // the first table of a stretch ends or starts it half the time: digits within 16 bytes
            // of the needle in a good share of the samples (standard filler alone: never)
            assertThat(beside).as("samples with a table's digits beside the needle").isBetween(samples / 5, samples * 9 / 10);
        }
    }

    @Test
    void tablesRoundTripAndBadValuesNameTheField() {
        TrainConfig tc = config(", \"tables\": 0.3");
        assertThat(tc.tables()).isEqualTo(0.3);
        assertThat(TrainConfig.fromJson(Json.parseObject(Json.write(tc.toJson()), "b.json"), "b.json").tables()).isEqualTo(0.3);
        assertThat(config("").tables()).isZero();
        assertThat(((java.util.Map<?, ?>) ((java.util.Map<?, ?>) config("").toJson().get("train")).get("synthetic")).containsKey("tables")).isFalse();
        for (String bad : List.of("-0.1", "1.5", "\"half\"")) {
            assertThatThrownBy(() -> config(", \"tables\": " + bad)).isInstanceOf(LongspanException.class).hasMessageContaining("synthetic.tables");
        }
    }
}

package dev.longspan.eval;

import dev.longspan.io.TestData;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class HeldOutSplitTest {
    @TempDir Path tmp;

    private static final String BIBLE = "Ge1:1 In the beginning.\nMal4:6 Lest I come (see Mat1:1 later).\nMat1:1 The book of the generation.\nRe22:21 Amen.\n";

    private Path data() throws Exception {
        Path d = tmp.resolve("data");
        Files.createDirectories(d.resolve("text/gutenberg"));
        Files.writeString(d.resolve("kjv-verses.txt"), BIBLE);
        Files.writeString(d.resolve("text/gutenberg/b.txt"), "novel b");
        Files.writeString(d.resolve("text/gutenberg/a.txt"), "novel a");
        Files.writeString(d.resolve("text/gutenberg/README.md"), "not a novel");
        return d;
    }

    @Test
    void cutsTheBibleAtMatthewAndHoldsOutTheNamedNovels() throws Exception {
        Path d = data();
        HeldOutSplit.Split s = HeldOutSplit.plan(d, List.of("b.txt"));
        long cut = BIBLE.indexOf("\nMat1:1 ") + 1;   // the line start, not the mention inside Malachi's line
        assertThat(s.train()).containsExactly(new HeldOutSplit.Part("kjv-ot.txt", "kjv-verses.txt", 0, cut),
                new HeldOutSplit.Part("a.txt", "text/gutenberg/a.txt", 0, 7));
        assertThat(s.heldOut()).containsExactly(new HeldOutSplit.Part("kjv-nt.txt", "kjv-verses.txt", cut, BIBLE.length()),
                new HeldOutSplit.Part("b.txt", "text/gutenberg/b.txt", 0, 7));

        Path out = tmp.resolve("split");
        HeldOutSplit.write(s, d, out);
        String ot = Files.readString(out.resolve("train/kjv-ot.txt")), nt = Files.readString(out.resolve("heldout/kjv-nt.txt"));
        assertThat(ot).endsWith("Mal4:6 Lest I come (see Mat1:1 later).\n");
        assertThat(nt).startsWith("Mat1:1 ");
        assertThat(ot + nt).isEqualTo(BIBLE);
        assertThat(Files.readString(out.resolve("heldout/b.txt"))).isEqualTo("novel b");
        try (var files = Files.list(out.resolve("train"))) {
            assertThat(files.map(p -> p.getFileName().toString()).sorted()).containsExactly("a.txt", "kjv-ot.txt");
        }
        assertThat(Files.readString(out.resolve("split.json"))).contains("\"heldout/kjv-nt.txt\"").contains("\"from\": " + cut);
    }

    @Test
    void isTheSameEveryTimeAndNeverOverwritesOtherContents() throws Exception {
        Path d = data(), out = tmp.resolve("split");
        HeldOutSplit.write(HeldOutSplit.plan(d, List.of("a.txt")), d, out);
        byte[] first = Files.readAllBytes(out.resolve("split.json"));
        HeldOutSplit.write(HeldOutSplit.plan(d, List.of("a.txt")), d, out);   // again: nothing changes
        assertThat(Files.readAllBytes(out.resolve("split.json"))).isEqualTo(first);
        Files.writeString(out.resolve("train/b.txt"), "edited by hand");
        assertThatThrownBy(() -> HeldOutSplit.write(HeldOutSplit.plan(d, List.of("a.txt")), d, out))
                .isInstanceOf(LongspanException.class).hasMessageContaining("train/b.txt").hasMessageContaining("not overwritten");
        assertThat(Files.readString(out.resolve("train/b.txt"))).isEqualTo("edited by hand");
    }

    @Test
    void refusesWhatCannotBeSplit() throws Exception {
        Path d = data();
        assertThatThrownBy(() -> HeldOutSplit.plan(d, List.of("c.txt"))).isInstanceOf(LongspanException.class).hasMessageContaining("c.txt").hasMessageContaining("a.txt, b.txt");
        assertThatThrownBy(() -> HeldOutSplit.plan(d, List.of("a.txt", "b.txt"))).isInstanceOf(LongspanException.class).hasMessageContaining("none is left");
        assertThatThrownBy(() -> HeldOutSplit.plan(d, List.of())).isInstanceOf(LongspanException.class).hasMessageContaining("at least one");
        Files.writeString(d.resolve("kjv-verses.txt"), "Ge1:1 In the beginning.\n");
        assertThatThrownBy(() -> HeldOutSplit.plan(d, List.of("a.txt"))).isInstanceOf(LongspanException.class).hasMessageContaining("Mat1:1");
        Files.writeString(d.resolve("kjv-verses.txt"), "Mat1:1 The book.\n");
        assertThatThrownBy(() -> HeldOutSplit.plan(d, List.of("a.txt"))).isInstanceOf(LongspanException.class).hasMessageContaining("nothing is left");
        assertThatThrownBy(() -> HeldOutSplit.plan(tmp.resolve("none"), List.of("a.txt"))).isInstanceOf(LongspanException.class).hasMessageContaining("no such file");
    }

    @Test
    void theSharedDataSplitsAtLine23146() throws Exception {
        Path d = TestData.shared("");
        Assumptions.assumeTrue(Files.exists(d.resolve("kjv-verses.txt")), "shared data not present");
        HeldOutSplit.Split s = HeldOutSplit.plan(d, List.of("pg98.txt"));
        byte[] bible = Files.readAllBytes(d.resolve("kjv-verses.txt"));
        long cut = s.train().getFirst().to();
        String before = new String(bible, 0, (int) cut, StandardCharsets.UTF_8);
        // the data README: Genesis–Malachi are lines 1–23,145
        assertThat(before.lines().count()).isEqualTo(23_145);
        assertThat(before.lines().reduce((a, b) -> b).orElseThrow()).startsWith("Mal4:6 ");
        assertThat(s.train()).hasSize(10).extracting(HeldOutSplit.Part::name).doesNotContain("pg98.txt", "kjv-nt.txt");
        assertThat(s.heldOut()).extracting(HeldOutSplit.Part::name).containsExactly("kjv-nt.txt", "pg98.txt");
    }
}

package dev.longspan.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** Paths of the shared test data and a corpus of varied text for tokenizer tests. */
public final class TestData {
    private TestData() {}

    /** A file of ../shared/data (beside the checkout), or of /work/shared/data where the checkout has none beside it. */
    public static Path shared(String rel) {
        Path p = Path.of(System.getProperty("user.dir")).resolve("../../shared/data").resolve(rel).normalize();
        return Files.exists(p) ? p : Path.of("/work/shared/data").resolve(rel);
    }

    static final String[] FIXED = {
            "Hello, world!", "  leading spaces", "trailing   ", "multiple\n\nnewlines\r\nand CRLF\r\n",
            "tabs\tand\u00a0no-break\u2003em space", "1234567890 3.14159 -42 1e10 0x1F 1,000,000",
            "def f(x):\n    return x**2  # comment\n\n\nclass A:\n\tpass\n",
            "for (int i = 0; i < n; i++) { sum += a[i]; }", "<html><body class=\"x\">&amp;</body></html>",
            "你好，世界！今天天气很好。", "こんにちは世界、カタカナとひらがな", "안녕하세요 세계", "Привет, мир! Ёжик",
            "مرحبا بالعالم", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Γειά σου Κόσμε",
            "I love 🍕 and 👨‍👩‍👧‍👦 families 🎉🎉", "flags 🇫🇷🇩🇪 and skin 👍🏽",
            "I'm, you're, he'll, they'd, it's, WE'VE, DON'T, She'S",
            "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", "text<|endoftext|>more", "<think>\nreasoning\n</think>\n\nanswer",
            "café naïve résumé", "e\u0301 decomposed a\u0308", "ﬁ ligature and Ｆｕｌｌｗｉｄｔｈ",
            "a    b\t\t\tc\n\n\n   d", "   ", "\n", " ", "", "x",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "==================================================", "https://example.com/path?query=1&b=2#frag",
            "∀x∈ℝ: x² ≥ 0 — ½ ¼ ⅓ ① Ⅳ ٣", "The year 2024 had 366 days; 12:30pm.", "snake_case camelCase kebab-case PascalCase",
            "\u0000\u0001 control \u007f chars", "mixed中文English混合text123数字",
            "    indented code\n        more indented\n", "end with newline\n", "!!!???...,,,", "'quoted' \"double\" `back`",
    };

    /** Random strings from mixed pools (ASCII, digits, whitespace, CJK, emoji, combining marks). */
    static List<String> random(int n, long seed) {
        String[] pools = {"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ", "0123456789", " \t\n\r  ", ".,;:!?'\"()[]{}<>-_=+*/\\@#$%^&|~`",
                "的一是不了人我在有他这为之大来以个中上们", "🍕🎉👍😀🚀", "\u0301\u0308\u200d", "éàüßñøÅ", "ЖжЩщЯя"};
        SplittableRandom r = new SplittableRandom(seed);
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            StringBuilder b = new StringBuilder();
            int len = r.nextInt(1, 60);
            while (b.length() < len) {
                String pool = pools[r.nextInt(pools.length)];
                int run = r.nextInt(1, 8);
                for (int k = 0; k < run; k++) {
                    int cp = pool.codePointAt(pool.offsetByCodePoints(0, r.nextInt(pool.codePointCount(0, pool.length()))));
                    b.appendCodePoint(cp);
                }
            }
            out.add(b.toString());
        }
        return out;
    }

    /** Every step-th verse of the KJV plus one long multi-verse chunk. */
    static List<String> kjv(int step) {
        try {
            List<String> lines = Files.readAllLines(shared("kjv-verses.txt"));
            List<String> out = new ArrayList<>();
            for (int i = 0; i < lines.size(); i += step) out.add(lines.get(i));
            out.add(String.join("\n", lines.subList(1000, 1060)));
            return out;
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}

package dev.longspan;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The packages of longspan-core form one order, bottom to top (docs/ARCHITECTURE.md): a package
 * names (imports or writes out in full) only packages below it, so there is no cycle and a new
 * package must be given its place.
 */
class PackageOrderTest {
    static final List<String> BOTTOM_TO_TOP = List.of(
            "util", "tensor", "kernel", "position", "attention", "io", "model", "format", "train", "eval");

    static final Pattern NAMED = Pattern.compile("\\bdev\\.longspan\\.([a-z]+)\\.");

    @Test
    void everyPackageNamesOnlyPackagesBelowIt() throws IOException {
        Path root = Path.of("src/main/java/dev/longspan");
        assertThat(root).as("run from longspan-core").isDirectory();
        TreeSet<String> packages = new TreeSet<>();
        try (Stream<Path> dirs = Files.list(root)) {
            dirs.filter(Files::isDirectory).forEach(d -> packages.add(d.getFileName().toString()));
        }
        assertThat(BOTTOM_TO_TOP).as("every package has a place in the order").containsExactlyInAnyOrderElementsOf(packages);
        List<String> upward = new ArrayList<>();
        for (String pkg : packages) {
            int rank = BOTTOM_TO_TOP.indexOf(pkg);
            try (Stream<Path> files = Files.list(root.resolve(pkg))) {
                for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                    Matcher m = NAMED.matcher(Files.readString(f).replaceFirst("package dev\\.longspan\\.[a-z]+;", ""));
                    while (m.find()) {
                        String used = m.group(1);
                        if (!used.equals(pkg) && BOTTOM_TO_TOP.indexOf(used) > rank) upward.add(pkg + "/" + f.getFileName() + " -> " + used);
                    }
                }
            }
        }
        assertThat(upward).as("names of a package above").isEmpty();
    }
}

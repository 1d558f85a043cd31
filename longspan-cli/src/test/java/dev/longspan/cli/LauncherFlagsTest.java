package dev.longspan.cli;

import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The collector, heap-sizing and C2 flags of the {@code ./longspan} launcher (its {@code jit=(...)}
 * array) are the ones the tests and the JMH forks run with (issue 17: "the same settings apply in
 * tests, benchmarks and the server"; the server is the launcher). A flag added to one place and not
 * the others fails here.
 */
class LauncherFlagsTest {
    static List<String> launcherFlags() throws Exception {
        String s = Files.readString(BundledModelTest.root().resolve("longspan"));
        Matcher m = Pattern.compile("(?s)\\njit=\\((.*?)\\)\\n").matcher(s);
        assertThat(m.find()).as("the launcher's jit=(...) array").isTrue();
        List<String> flags = new ArrayList<>();
        for (String t : m.group(1).trim().split("\\s+")) flags.add(t);
        return flags;
    }

    @Test
    void theTestJvmRunsWithEveryLauncherFlag() throws Exception {
        List<String> flags = launcherFlags();
        assertThat(flags).contains("-XX:+UseG1GC", "-XX:MinHeapFreeRatio=10", "-XX:MaxHeapFreeRatio=25", "-XX:LoopStripMiningIter=1000");
        assertThat(ManagementFactory.getRuntimeMXBean().getInputArguments()).containsAll(flags);
    }

    @Test
    void theJmhForksRunWithEveryLauncherFlag() throws Exception {
        List<String> flags = launcherFlags();
        for (String bench : List.of("GemmBench", "KernelsBench")) {
            Path src = BundledModelTest.root().resolve("longspan-bench/src/main/java/dev/longspan/bench/" + bench + ".java");
            String fork = Files.readString(src).replaceAll("(?s).*@Fork\\((.*?)\\}\\).*", "$1");
            List<String> args = new ArrayList<>();
            Matcher q = Pattern.compile("\"([^\"]*)\"").matcher(fork);
            while (q.find()) args.add(q.group(1));
            assertThat(args).as(bench).containsAll(flags);
        }
    }
}

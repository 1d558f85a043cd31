package dev.longspan.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longspan.tensor.Parallel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The help the program prints: every command and option described, nothing cut or split. */
class HelpTest {

    static List<CommandSpec> commands() {
        List<CommandSpec> all = new ArrayList<>();
        collect(new CommandLine(new Main()), all);
        return all;
    }

    private static void collect(CommandLine cl, List<CommandSpec> all) {
        all.add(cl.getCommandSpec());
        for (CommandLine sub : cl.getSubcommands().values()) collect(sub, all);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("commands")
    void everyOptionAndParameterHasADescription(CommandSpec cmd) {
        for (ArgSpec a : cmd.args()) {
            String name = a instanceof CommandLine.Model.OptionSpec o ? o.longestName() : a.paramLabel();
            assertThat(String.join(" ", a.description()).strip()).as("%s %s", cmd.qualifiedName(), name).isNotEmpty();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("commands")
    void theFirstLineOfEveryDescriptionIsOneCompleteSentence(CommandSpec cmd) {
        // the command list shows only the first line of a description
        String[] d = cmd.usageMessage().description();
        assertThat(d).as(cmd.qualifiedName()).isNotEmpty();
        assertThat(d[0].strip()).as(cmd.qualifiedName()).endsWith(".").hasSizeLessThanOrEqualTo(120);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("commands")
    void wrappedHelpDoesNotSplitWords(CommandSpec cmd) {
        if (cmd.userObject() instanceof CommandLine.HelpCommand) return;  // picocli's own text
        String usage = cmd.commandLine().getUsageMessage(CommandLine.Help.Ansi.OFF);
        List<String> text = new ArrayList<>(List.of(cmd.usageMessage().description()));
        for (ArgSpec a : cmd.args()) text.addAll(List.of(a.renderedDescription()));
        String synopsis = cmd.commandLine().getHelp().synopsis(0);
        for (CommandLine.Model.OptionSpec o : cmd.options()) {
            String shown = o.longestName() + "=" + o.paramLabel();
            if (o.arity().max() > 0 && !o.hidden()) assertThat(synopsis).as("%s synopsis", cmd.qualifiedName()).contains(shown);
        }
        for (String line : text) {
            for (String word : line.split("\\s+")) {
                if (!word.isEmpty()) assertThat(usage).as("%s: '%s' in\n%s", cmd.qualifiedName(), word, usage).contains(word);
            }
        }
    }

    @Test
    void multiValueOptionsHaveAReadableSynopsis() {
        String usage = new CommandLine(new Main()).getSubcommands().get("passkey").getUsageMessage(CommandLine.Help.Ansi.OFF);
        assertThat(usage).contains("--depths=D[,D...]").doesNotContain("......");
    }

    @Test
    void benchWithoutASubcommandNamesEveryBenchmark() {
        CliRun r = CliRun.of("bench");
        assertThat(r.exit()).isEqualTo(2);
        String firstLine = r.err().lines().filter(l -> l.startsWith("longspan:")).findFirst().orElseThrow();
        for (String b : new CommandLine(new Main()).getSubcommands().get("bench").getSubcommands().keySet()) {
            assertThat(firstLine).contains(b);
        }
    }

    @Test
    void threadsBeforeTheCommandApplyToIt() throws Exception {
        int before = Parallel.threads();
        int asked = before == 3 ? 2 : 3;
        try {
            CliRun r = CliRun.of("--threads", Integer.toString(asked), "bench", "rope", "--heads", "1", "--n", "8", "--dim", "4",
                    "--repeats", "1", "--spec", "kind=rope", "--json");
            assertThat(r.exit()).as(r.err()).isZero();
            assertThat(new ObjectMapper().readTree(r.out()).get("threads").asInt()).isEqualTo(asked);
            CliRun bad = CliRun.of("--threads", "0", "info", "--help");
            assertThat(bad.exit()).isEqualTo(2);
            assertThat(bad.err()).contains("--threads");
        } finally {
            Parallel.setThreads(before);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("commands")
    void theReadmeCommandTableListsEveryOption(CommandSpec cmd) throws Exception {
        if (!cmd.subcommands().isEmpty() || cmd.userObject() instanceof CommandLine.HelpCommand) return;
        String readme = java.nio.file.Files.readString(java.nio.file.Path.of(System.getProperty("user.dir")).getParent().resolve("README.md"));
        String prefix = "| `" + cmd.qualifiedName() + " ";
        String row = readme.lines().filter(l -> l.startsWith(prefix) || l.startsWith("| `" + cmd.qualifiedName() + "`")).findFirst().orElse(null);
        assertThat(row).as("README row for %s", cmd.qualifiedName()).isNotNull();
        for (CommandLine.Model.OptionSpec o : cmd.options()) {
            // --threads, --help and --version are described once below the table
            if (List.of("--threads", "--help", "--version").contains(o.longestName())) continue;
            assertThat(row).as("README row for %s", cmd.qualifiedName()).contains(o.longestName());
        }
    }
}

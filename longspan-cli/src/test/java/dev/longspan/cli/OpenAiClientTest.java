package dev.longspan.cli;

import dev.longspan.format.ModelLoader;
import dev.longspan.model.InferenceOptions;
import dev.longspan.server.OpenAiServer;
import dev.longspan.server.ServerOptions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * longspan serve driven by the official {@code openai} npm package (clients/node, installed by
 * {@code npm ci} in .ci/run): chat, completion, streaming, stop, errors, concurrency, a cancelled
 * stream, prefix reuse. Skipped, saying why, where Node or the installed package is missing.
 */
class OpenAiClientTest {
    @Test
    void theOfficialOpenAiClientWorksAgainstServe() throws Exception {
        Path clients = Path.of(System.getProperty("user.dir")).getParent().resolve("clients/node");
        Assumptions.assumeTrue(Files.isDirectory(clients.resolve("node_modules/openai")),
                "the openai package is not installed: run 'npm ci --prefix clients/node' (.ci/run does)");
        Assumptions.assumeTrue(hasNode(), "node is not on the PATH");
        ModelLoader.LoadedModel lm = ModelLoading.load(CliRun.shared("models/stories260K/stories260K.gguf"), null, null, false);
        ServerOptions o = new ServerOptions("127.0.0.1", 0, "client-test-key", "stories260K", 1 << 20, 2, 16, 300_000, 2048, 1L << 28, null);
        try (OpenAiServer server = OpenAiServer.create(lm, JinjaChatTemplate.forModel(lm), InferenceOptions.DEFAULT, o, "client-test").start()) {
            ProcessBuilder pb = new ProcessBuilder("node", "openai-client-test.mjs").directory(clients.toFile()).redirectErrorStream(true);
            pb.environment().put("LONGSPAN_BASE_URL", "http://127.0.0.1:" + server.port() + "/v1");
            pb.environment().put("LONGSPAN_API_KEY", "client-test-key");
            pb.environment().put("LONGSPAN_MODEL", "stories260K");
            Process p = pb.start();
            p.getOutputStream().close();
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            Thread reader = Thread.ofVirtual().start(() -> {
                try { p.getInputStream().transferTo(out); } catch (java.io.IOException e) { /* the process ended */ }
            });
            // the script's checks are bounded; this bounds a hung Node as well
            boolean ended = p.waitFor(5, TimeUnit.MINUTES);
            if (!ended) p.destroyForcibly().waitFor();
            reader.join();
            String log = out.toString(StandardCharsets.UTF_8);
            assertThat(ended).as(log).isTrue();
            assertThat(p.exitValue()).as(log).isZero();
            assertThat(log).contains("ok - prefixReuse", "ok - cancelledStreamFreesItsSlot", "ok - chatLogprobs",
                    "ok - unimplementedParametersAreRefusedNotIgnored", " 0 failed");
        }
    }

    private static boolean hasNode() {
        try {
            Process p = new ProcessBuilder("node", "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (java.io.IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}

package dev.longspan.io;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributeView;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class AtomicFilesTest {
    @TempDir
    Path dir;

    // beyond Linux's largest pid_max (2^22) and macOS's 99999: no process has it
    static final long DEAD_PID = 999_999_999L;

    static java.util.List<String> names(Path d) throws IOException {
        try (Stream<Path> s = Files.list(d)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void writtenFilesGetTheModeOfANewlyCreatedFile() throws IOException {
        assumeTrue(Files.getFileAttributeView(dir, PosixFileAttributeView.class) != null, "POSIX permissions");
        Path target = dir.resolve("out.json");
        AtomicFiles.writeString(target, "{}");
        Path reference = Files.createFile(dir.resolve("reference"));
        assertThat(Files.getPosixFilePermissions(target)).isEqualTo(Files.getPosixFilePermissions(reference));
        // and again when the target already exists
        AtomicFiles.writeString(target, "{\"a\": 1}");
        assertThat(Files.getPosixFilePermissions(target)).isEqualTo(Files.getPosixFilePermissions(reference));
        assertThat(Files.readString(target)).isEqualTo("{\"a\": 1}");
    }

    @Test
    void aDirectoryWhereAFileIsExpectedIsOneLineWithoutATempName() throws IOException {
        Path target = Files.createDirectory(dir.resolve("model.gguf"));
        assertThatThrownBy(() -> AtomicFiles.writeString(target, "x"))
                .isInstanceOf(LongspanException.class)
                .hasMessageContaining("model.gguf").hasMessageContaining("is a directory")
                .hasMessageNotContaining(".tmp").hasMessageNotContaining("\n");
        assertThat(names(dir)).containsExactly("model.gguf");
        assertThat(names(target)).isEmpty();
    }

    @Test
    void aFileInThePathIsNamed() throws IOException {
        Path file = Files.writeString(dir.resolve("notes.txt"), "mine");
        assertThatThrownBy(() -> AtomicFiles.writeString(file.resolve("sub/out.json"), "x"))
                .isInstanceOf(LongspanException.class)
                .hasMessageContaining("notes.txt is a file").hasMessageNotContaining(".tmp");
        assertThatThrownBy(() -> AtomicFiles.checkWritableDirectory(file.resolve("sub")))
                .isInstanceOf(LongspanException.class).hasMessageContaining("notes.txt is a file");
        assertThatThrownBy(() -> AtomicFiles.checkWritableDirectory(file))
                .isInstanceOf(LongspanException.class).hasMessageContaining("is a file, not a directory");
        assertThat(Files.readString(file)).isEqualTo("mine");
    }

    @Test
    void aFailedWriteLeavesNeitherTheTargetNorATempFile() throws IOException {
        Path target = dir.resolve("out.bin");
        assertThatThrownBy(() -> AtomicFiles.write(target, out -> {
            out.write(new byte[100]);
            throw new IOException("disk full");
        })).isInstanceOf(LongspanException.class).hasMessage(target + ": cannot write: disk full");
        assertThat(names(dir)).isEmpty();
    }

    @Test
    void theProbeCreatesTheDirectoryAndLeavesNothingInIt() throws IOException {
        Path out = dir.resolve("runs/passkey");
        AtomicFiles.checkWritableDirectory(out);
        assertThat(out).isDirectory();
        assertThat(names(out)).isEmpty();
        AtomicFiles.checkWritable(out.resolve("passkey.json"));
        assertThat(names(out)).isEmpty();
        assertThatThrownBy(() -> AtomicFiles.checkWritable(out)).hasMessageContaining("is a directory");
    }

    @Test
    void theNextWriteRemovesTempFilesOfKilledWritersOnly() throws IOException {
        Path target = dir.resolve("model.safetensors");
        long parent = ProcessHandle.current().parent().map(ProcessHandle::pid).orElse(ProcessHandle.current().pid());
        String killed = ".model.safetensors." + DEAD_PID + "-k1ll3d.tmp";
        String live = ".model.safetensors." + parent + "-4l1ve.tmp";
        String own = AtomicFiles.tempName("model.safetensors"); // another write of this process, still in progress
        String otherTarget = ".model.safetensors.bak." + DEAD_PID + "-0ther.tmp";
        String users = "model.safetensors.tmp";
        for (String n : new String[]{killed, live, own, otherTarget, users}) Files.writeString(dir.resolve(n), "partial");

        AtomicFiles.writeString(target, "new");

        assertThat(names(dir)).containsExactlyInAnyOrder(live, own, otherTarget, users, "model.safetensors");
        assertThat(own).startsWith(".model.safetensors." + ProcessHandle.current().pid() + "-").endsWith(".tmp");
    }

    @Test
    void probeNamesAreRecognisedAndNothingElse() {
        // what checkWritableDirectory creates for an instant: an emptiness check of --out skips it (MPI ranks probe together)
        assertThat(AtomicFiles.isProbe(AtomicFiles.tempName("longspan-probe"))).isTrue();
        assertThat(AtomicFiles.isProbe(AtomicFiles.tempName("model.safetensors"))).isFalse();
        assertThat(AtomicFiles.isProbe(".longspan-probe.txt")).isFalse();
        assertThat(AtomicFiles.isProbe("longspan-probe.1-a.tmp")).isFalse();
        assertThat(AtomicFiles.isProbe("notes.tmp")).isFalse();
    }
}

package dev.longspan.io;

import dev.longspan.format.ModelLoader;
import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

class IoErrorsTest {
    @TempDir
    Path dir;

    @Test
    void theReasonIsInTheExceptionsType() {
        assertThat(IoErrors.reason(new AccessDeniedException("/m/x.gguf"))).isEqualTo("permission denied");
        assertThat(IoErrors.reason(new NoSuchFileException("/m/x.gguf"))).isEqualTo("no such file");
        assertThat(IoErrors.reason(new FileSystemException("/m", null, "Is a directory"))).isEqualTo("Is a directory");
        assertThat(IoErrors.reason(new IOException("disk on fire"))).isEqualTo("disk on fire");
    }

    // root reads files whatever their mode: the mapping above is what tests there
    static boolean root() {
        return "root".equals(System.getProperty("user.name"));
    }

    @Test
    void anUnreadableGgufIsPermissionDeniedNotWrongMagic() throws IOException {
        assumeFalse(root());
        Path f = Files.write(dir.resolve("m.gguf"), new byte[]{'G', 'G', 'U', 'F', 3, 0, 0, 0});
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("---------"));
        assertThatThrownBy(() -> ModelLoader.load(f)).isInstanceOf(LongspanException.class).hasMessage(f + ": cannot read: permission denied");
    }

    @Test
    void anUnreadableModelFolderIsPermissionDeniedNotNoConfig() throws IOException {
        assumeFalse(root());
        Path m = Files.createDirectories(dir.resolve("model"));
        Files.writeString(m.resolve("config.json"), "{}");
        Files.setPosixFilePermissions(m, PosixFilePermissions.fromString("r--------"));
        try {
            assertThatThrownBy(() -> ModelLoader.load(m)).isInstanceOf(LongspanException.class).hasMessageContaining("permission denied");
        } finally {
            Files.setPosixFilePermissions(m, PosixFilePermissions.fromString("rwx------"));
        }
    }
}

package dev.longspan.mpi;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Finding libmpi (the override, the known paths, ldconfig's cache, one clear line when it is missing) and the threads per process. */
class MpiLibraryTest {
    @TempDir
    Path dir;

    @Test
    void aMissingLibraryIsOneLineThatSaysHowToInstallIt() {
        assertThatThrownBy(() -> Mpi.findLibrary(null, List.of(dir.resolve("libmpi.so.40").toString()), List::of))
                .isInstanceOf(LongspanException.class)
                .hasMessageContaining("libmpi.so was not found").hasMessageContaining("apt-get install -y openmpi-bin libopenmpi-dev")
                .hasMessageContaining("LONGSPAN_MPI_LIB").hasMessageNotContaining("\n");
        assertThatThrownBy(() -> Mpi.findLibrary(dir.resolve("nope.so").toString(), List.of(), List::of))
                .isInstanceOf(LongspanException.class).hasMessageContaining("LONGSPAN_MPI_LIB=" + dir.resolve("nope.so"));
    }

    @Test
    void processesOnOneMachineShareItsCores() {
        assertThat(Mpi.threadsPerProcess(16, "4")).isEqualTo(4);
        assertThat(Mpi.threadsPerProcess(2, "4")).isEqualTo(1);
        assertThat(Mpi.threadsPerProcess(8, null)).isEqualTo(8);
        assertThat(Mpi.threadsPerProcess(8, "x")).isEqualTo(8);
    }

    @Test
    void theOverrideThenTheKnownPathsThenLdconfig() throws Exception {
        Path known = Files.createFile(dir.resolve("known.so")), cached = Files.createFile(dir.resolve("cached.so")), mine = Files.createFile(dir.resolve("mine.so"));
        assertThat(Mpi.findLibrary(mine.toString(), List.of(known.toString()), () -> List.of(cached))).isEqualTo(mine);
        assertThat(Mpi.findLibrary(null, List.of(dir.resolve("absent.so").toString(), known.toString()), () -> List.of(cached))).isEqualTo(known);
        assertThat(Mpi.findLibrary("", List.of(dir.resolve("absent.so").toString()), () -> List.of(cached))).isEqualTo(cached);
    }
}

package dev.seqscore.e2e.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.seqscore.e2e.cluster.ClusterSetup.Allocator;
import dev.seqscore.e2e.cluster.ClusterSetup.JarKind;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ClusterSetupTest {

    @Test
    void theSlimJarGetsOnnxRuntimeInLibLoadedParentFirstAndTheShadedJarNothing(@TempDir Path root)
            throws IOException {
        Path target = Files.createDirectories(root.resolve("flink-job/target/flink-lib"));
        Path ort = jar(target.resolve("onnxruntime-1.29.0.jar"), "ai/onnxruntime/OrtEnvironment.class");
        Path slim = jar(root.resolve("flink-job/target/seqscore-flink-job-0.1.0-SNAPSHOT-slim.jar"), "x.class");
        Path shaded = jar(root.resolve("flink-job/target/seqscore-flink-job-0.1.0-SNAPSHOT-shaded.jar"),
                "ai/onnxruntime/OrtEnvironment.class");
        Path flink = Path.of("/flink/flink-runtime.jar");

        ClusterSetup s = ClusterSetup.of(JarKind.SLIM, root, Allocator.GLIBC);
        assertThat(s.jar()).isEqualTo(slim);
        assertThat(s.classpath(List.of(flink))).containsExactly(flink, ort);
        assertThat(s.conf(Map.of("a", "b"))).containsEntry("a", "b")
                .containsEntry("classloader.parent-first-patterns.additional", "ai.onnxruntime.");

        ClusterSetup h = ClusterSetup.of(JarKind.SHADED, root, Allocator.GLIBC);
        assertThat(h.jar()).isEqualTo(shaded);
        assertThat(h.classpath(List.of(flink))).containsExactly(flink);
        assertThat(h.conf(Map.of())).isEmpty();

        ClusterSetup touched = s.withHeapPreTouch();
        assertThat(s.heapPreTouched()).isFalse();
        assertThat(touched.heapPreTouched()).isTrue();
        assertThat(touched.conf(Map.of())).containsEntry("env.java.opts.taskmanager", "-XX:+AlwaysPreTouch")
                .containsEntry("classloader.parent-first-patterns.additional", "ai.onnxruntime.");
        assertThat(touched.describe()).contains("slim", "in lib/ parent-first", "glibc", "pre-touched");

        // A jar given by path is recognised by whether it carries ONNX Runtime.
        assertThat(ClusterSetup.ofJar(shaded, root, Allocator.GLIBC).jarKind()).isEqualTo(JarKind.SHADED);
        assertThat(ClusterSetup.ofJar(slim, root, Allocator.GLIBC).libJars()).containsExactly(ort);
    }

    @Test
    void aMissingJarNamesTheBuildThatMakesIt(@TempDir Path root) {
        assertThatThrownBy(() -> ClusterSetup.of(JarKind.SLIM, root, Allocator.GLIBC))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("slim")
                .hasMessageContaining("bin/seqscore build");
    }

    @Test
    void theAllocatorIsTheProcessEnvironment() {
        assertThat(Allocator.GLIBC.environment()).isEmpty();
        assertThat(Allocator.ARENAS2.environment()).containsExactly(Map.entry("MALLOC_ARENA_MAX", "2"));
        assertThat(Allocator.parse("glibc-arenas2")).isEqualTo(Allocator.ARENAS2);
        assertThatThrownBy(() -> Allocator.parse("tcmalloc")).hasMessageContaining("jemalloc");
        if (ClusterSetup.jemallocLibrary().isPresent()) {
            assertThat(Allocator.recommended()).isEqualTo(Allocator.JEMALLOC);
            assertThat(Allocator.JEMALLOC.environment().get("LD_PRELOAD")).contains("libjemalloc.so");
        } else {
            assertThat(Allocator.recommended()).isEqualTo(Allocator.ARENAS2);
            assertThatThrownBy(Allocator.JEMALLOC::environment).hasMessageContaining("libjemalloc2");
        }
    }

    private static Path jar(Path path, String entry) throws IOException {
        Files.createDirectories(path.getParent());
        try (OutputStream out = Files.newOutputStream(path); ZipOutputStream zip = new ZipOutputStream(out)) {
            zip.putNextEntry(new ZipEntry(entry));
            zip.write(new byte[] {1});
            zip.closeEntry();
        }
        return path;
    }
}

package dev.seqscore.job;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.seqscore.testing.RepoPaths;
import java.io.File;
import java.lang.reflect.InvocationTargetException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The slim job jar (no ONNX Runtime inside) submitted to a cluster that lacks ONNX Runtime in {@code lib/}: main()
 * must refuse before submission and say how to fix it, not die of a bare NoClassDefFoundError in the JobManager.
 */
class SlimJarITCase {
    @Test
    void slimJarWithoutOnnxRuntimeOnTheClassPathFailsNamingTheFix() throws Exception {
        List<URL> urls = new ArrayList<>();
        urls.add(slimJar().toUri().toURL());
        // Flink and its dependencies, as a cluster's lib/ has them; no ONNX Runtime, none of this module's classes.
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            if (entry.endsWith(".jar") && !entry.contains("onnxruntime")) {
                urls.add(Path.of(entry).toUri().toURL());
            }
        }
        try (URLClassLoader cluster = new URLClassLoader(urls.toArray(URL[]::new),
                ClassLoader.getPlatformClassLoader())) {
            assertThat(catchThrowable(() -> cluster.loadClass("ai.onnxruntime.OrtEnvironment")))
                    .as("nothing under test if ORT is there").isInstanceOf(ClassNotFoundException.class);
            Class<?> job = cluster.loadClass(SeqScoreJob.class.getName());
            String[] args = {"--model", RepoPaths.defaultModel().toString()};
            Thread self = Thread.currentThread();
            ClassLoader previous = self.getContextClassLoader();
            self.setContextClassLoader(cluster);
            Throwable thrown;
            try {
                thrown = catchThrowable(() -> job.getMethod("main", String[].class).invoke(null, (Object) args));
            } finally {
                self.setContextClassLoader(previous);
            }
            assertThat(thrown).isInstanceOf(InvocationTargetException.class);
            assertThat(thrown.getCause()).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("ONNX Runtime is not on the class path")
                    .hasMessageContaining("Flink's lib/")
                    .hasMessageContaining("shaded jar");
        }
    }

    private static Path slimJar() throws Exception {
        Path target = RepoPaths.repoRoot().resolve("flink-job/target");
        try (Stream<Path> files = Files.list(target)) {
            return files.filter(f -> f.getFileName().toString().matches("seqscore-flink-job-.*-slim\\.jar"))
                    .findFirst()
                    .orElseThrow(() -> new AssertionError("no slim jar in " + target + ": run `mvn package`"));
        }
    }
}

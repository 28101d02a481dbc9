package dev.seqscore.model;

import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.WindowEvent;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * ONNX Runtime 1.29 crashes the JVM if its environment is first created on a thread with a default (1 MB) stack;
 * see {@link OrtRuntime}. This JVM has long created it, so the check runs in a fresh one.
 */
class OrtRuntimeTest {
    @TempDir
    Path tmp;

    @Test
    void firstScorerOnADefaultStackThreadDoesNotCrashTheJvm() throws Exception {
        Path bundle = TestBundles.tiny(tmp.resolve("b"));
        Path java = Paths.get(System.getProperty("java.home"), "bin", "java");
        Process child = new ProcessBuilder(java.toString(), "-Xss1m", "-cp", System.getProperty("java.class.path"),
                Child.class.getName(), bundle.toString())
                .redirectErrorStream(true).start();
        String output = new String(child.getInputStream().readAllBytes());
        assertThat(child.waitFor(2, TimeUnit.MINUTES)).isTrue();
        assertThat(child.exitValue()).as("child JVM exit code; output:%n%s", output).isZero();
        assertThat(output).contains("scored 1 row");
    }

    /** Opens the first ONNX Runtime session of its JVM on a thread with a 1 MB stack, as a Flink task would. */
    public static final class Child {
        public static void main(String[] args) throws Exception {
            Throwable[] failure = new Throwable[1];
            Thread task = new Thread(null, () -> {
                try {
                    ModelBundle bundle = ModelBundle.load(Paths.get(args[0]));
                    bundle.validate();
                    FeatureEncoder encoder = new FeatureEncoder(bundle.spec());
                    FeatureBatch batch = encoder.newBatch(1);
                    encoder.add(List.of(new WindowEvent("a", "c", 1, 0L)), batch);
                    try (OnnxScorer scorer = new OnnxScorer(bundle)) {
                        System.out.println("scored " + scorer.score(batch)[0].length + " row");
                    }
                } catch (Throwable t) {
                    failure[0] = t;
                }
            }, "task", 1L << 20);
            task.start();
            task.join();
            if (failure[0] != null) {
                failure[0].printStackTrace();
                System.exit(1);
            }
        }
    }
}

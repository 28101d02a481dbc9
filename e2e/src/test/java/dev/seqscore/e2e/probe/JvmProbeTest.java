package dev.seqscore.e2e.probe;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OrtEnvironment;
import java.net.URL;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.util.ChildFirstClassLoader;
import org.apache.flink.util.FlinkUserCodeClassLoader;
import org.junit.jupiter.api.Test;

/**
 * The probe reads real processes: this test's own JVM, looked at from outside through /proc and jcmd, as the drill
 * looks at a TaskManager. The parsers are checked on the formats the kernel and the JDK print.
 */
class JvmProbeTest {
    private static final long SELF = ProcessHandle.current().pid();

    @Test
    void countsLiveFlinkUserCodeClassLoadersAfterAFullGc() throws Exception {
        int before = JvmProbe.userCodeClassLoaders(SELF);
        List<FlinkUserCodeClassLoader> held = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            held.add(new ChildFirstClassLoader(new URL[0], getClass().getClassLoader(), new String[0],
                    FlinkUserCodeClassLoader.NOOP_EXCEPTION_HANDLER));
        }
        assertThat(JvmProbe.userCodeClassLoaders(SELF)).isEqualTo(before + 3);
        for (FlinkUserCodeClassLoader l : held) {
            l.close();
        }
        held.clear();
        // Unreachable now: the full GC before counting collects them.
        assertThat(JvmProbe.userCodeClassLoaders(SELF)).isEqualTo(before);
    }

    @Test
    void seesTheOnnxRuntimeLibrariesOnceLoadedAndTheResidentMemory() throws Exception {
        Object[] env = new Object[1];
        // ORT's first use needs a deep stack (see OrtRuntime in flink-job).
        Thread t = new Thread(null, () -> env[0] = OrtEnvironment.getEnvironment(), "ort-init", 16L << 20);
        t.start();
        t.join();
        assertThat(env[0]).isInstanceOf(OrtEnvironment.class);
        assertThat(JvmProbe.ortLibraries(SELF)).isNotEmpty()
                .allSatisfy(p -> assertThat(p).contains("onnxruntime").contains(".so"));
        assertThat(JvmProbe.rssKb(SELF)).isGreaterThan(10_000);
    }

    @Test
    void parsesTheKernelsAndTheJdksFormats() {
        assertThat(JvmProbe.parseRssKb("Name:\tjava\nVmHWM:\t  900000 kB\nVmRSS:\t  812344 kB\nRssAnon:\t 1 kB\n"))
                .isEqualTo(812_344);
        String maps = String.join("\n",
                "7f1c2a000000-7f1c2a200000 r-xp 00000000 08:01 123 /tmp/onnxruntime-java123/libonnxruntime.so",
                "7f1c2a200000-7f1c2a400000 r--p 00200000 08:01 123 /tmp/onnxruntime-java123/libonnxruntime.so",
                "7f1c2b000000-7f1c2b100000 r-xp 00000000 08:01 124 /tmp/onnxruntime-java456/libonnxruntime4j_jni.so "
                        + "(deleted)",
                "7f1c2c000000-7f1c2c100000 r-xp 00000000 08:01 125 /usr/lib/jvm/lib/libjava.so",
                "7f1c2d000000-7f1c2d100000 rw-p 00000000 00:00 0 ");
        assertThat(JvmProbe.parseOrtLibraries(maps)).containsExactly(
                "/tmp/onnxruntime-java123/libonnxruntime.so",
                "/tmp/onnxruntime-java456/libonnxruntime4j_jni.so (deleted)");
        String histogram = String.join("\n",
                " num     #instances         #bytes  class name (module)",
                "-------------------------------------------------------",
                "   1:         20000        1600000  [B (java.base@17.0.15)",
                " 412:             3            264  org.apache.flink.util.ChildFirstClassLoader",
                " 980:             1             88  org.apache.flink.util.FlinkUserCodeClassLoaders$ParentFirstClassLoader",
                " 981:             4             96  org.apache.flink.util.FlinkUserCodeClassLoaders$SafetyNetWrapperClassLoader",
                "Total         20008        1600448");
        assertThat(JvmProbe.countUserCodeLoaders(histogram)).isEqualTo(4);
        String withSessions = histogram.replace("Total", String.join("\n",
                " 700:             2             48  ai.onnxruntime.OrtSession",
                " 701:             2             64  dev.seqscore.model.OnnxScorer",
                " 702:             1             16  ai.onnxruntime.OrtSession$SessionOptions",
                "Total"));
        assertThat(JvmProbe.countInstances(withSessions, java.util.Set.of("ai.onnxruntime.OrtSession",
                "dev.seqscore.model.OnnxScorer", "dev.seqscore.model.ModelBundle")))
                .containsEntry("ai.onnxruntime.OrtSession", 2).containsEntry("dev.seqscore.model.OnnxScorer", 2)
                .as("not in the histogram: none alive").containsEntry("dev.seqscore.model.ModelBundle", 0);
    }
}

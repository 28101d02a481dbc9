package dev.seqscore.tools.demo;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.offline.LocalFlink;
import java.util.Map;
import org.junit.jupiter.api.Test;

class DemoStackTest {

    @Test
    void theMetricsReporterListensOnTheBindAddressAndTheUsersFlinkOptionsWin() {
        // Flink's own Prometheus reporter would listen on every interface; the loopback variant takes the host.
        assertThat(DemoStack.flinkOverrides(LocalFlink.LOOPBACK, 9249, Map.of()))
                .containsEntry("metrics.reporter.prom.host", "127.0.0.1")
                .containsEntry("metrics.reporter.prom.port", "9249")
                .containsEntry("metrics.reporter.prom.factory.class",
                        "dev.seqscore.tools.metrics.LoopbackPrometheusReporterFactory");
        assertThat(DemoStack.flinkOverrides(LocalFlink.LOOPBACK, 0, Map.of()))
                .doesNotContainKey("metrics.reporter.prom.factory.class");
        assertThat(DemoStack.flinkOverrides(LocalFlink.LOOPBACK, 9249, Map.of("metrics.reporter.prom.port", "9300")))
                .containsEntry("metrics.reporter.prom.port", "9300");
    }

    @Test
    void theDemoBindsToLoopbackUnlessTold() {
        assertThat(Demo.OPTIONS.parse().get(Demo.BIND_ADDRESS)).isEqualTo("127.0.0.1");
        assertThat(Demo.OPTIONS.parse("--bind-address", "0.0.0.0").get(Demo.BIND_ADDRESS)).isEqualTo("0.0.0.0");
    }
}

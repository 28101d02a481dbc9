package dev.seqscore.tools.demo;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.JobManagerOptions;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.configuration.WebOptions;
import org.junit.jupiter.api.Test;

class LocalFlinkTest {

    @Test
    void everyServerBindsToTheGivenAddressAndJarUploadsAreOff() {
        Configuration c = LocalFlink.configuration(LocalFlink.LOOPBACK, 0, 9249, Map.of());

        assertThat(c.get(RestOptions.BIND_ADDRESS)).isEqualTo("127.0.0.1");
        assertThat(c.get(RestOptions.BIND_PORT)).isEqualTo("0");
        assertThat(c.get(JobManagerOptions.BIND_HOST)).isEqualTo("127.0.0.1");
        assertThat(c.get(TaskManagerOptions.BIND_HOST)).isEqualTo("127.0.0.1");
        assertThat(c.get(WebOptions.SUBMIT_ENABLE)).isFalse();
        // Flink's own Prometheus reporter would listen on every interface; the loopback variant takes the host.
        assertThat(c.toMap()).containsEntry("metrics.reporter.prom.host", "127.0.0.1")
                .containsEntry("metrics.reporter.prom.port", "9249")
                .containsEntry("metrics.reporter.prom.factory.class",
                        "dev.seqscore.tools.metrics.LoopbackPrometheusReporterFactory");
        assertThat(LocalFlink.configuration(LocalFlink.LOOPBACK, 0, 0, Map.of()).toMap())
                .doesNotContainKey("metrics.reporter.prom.factory.class");
    }

    @Test
    void aWildcardBindOpensTheServersButClientsStillUseLoopbackAndOverridesWin() {
        Configuration c = LocalFlink.configuration("0.0.0.0", 8081, 0,
                Map.of("execution.checkpointing.unaligned.enabled", "true"));

        assertThat(c.get(RestOptions.BIND_ADDRESS)).isEqualTo("0.0.0.0");
        assertThat(c.get(JobManagerOptions.BIND_HOST)).isEqualTo("0.0.0.0");
        assertThat(c.get(RestOptions.ADDRESS)).isEqualTo("127.0.0.1");
        assertThat(c.toMap()).containsEntry("execution.checkpointing.unaligned.enabled", "true");
    }

    @Test
    void theDemoBindsToLoopbackUnlessTold() {
        assertThat(Demo.OPTIONS.parse().get(Demo.BIND_ADDRESS)).isEqualTo("127.0.0.1");
        assertThat(Demo.OPTIONS.parse("--bind-address", "0.0.0.0").get(Demo.BIND_ADDRESS)).isEqualTo("0.0.0.0");
    }
}

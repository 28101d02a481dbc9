package dev.seqscore.offline;

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
        Configuration c = LocalFlink.configuration(LocalFlink.LOOPBACK, 0, Map.of());

        assertThat(c.get(RestOptions.BIND_ADDRESS)).isEqualTo("127.0.0.1");
        assertThat(c.get(RestOptions.BIND_PORT)).isEqualTo("0");
        assertThat(c.get(JobManagerOptions.BIND_HOST)).isEqualTo("127.0.0.1");
        assertThat(c.get(TaskManagerOptions.BIND_HOST)).isEqualTo("127.0.0.1");
        assertThat(c.get(WebOptions.SUBMIT_ENABLE)).isFalse();
    }

    @Test
    void aWildcardBindOpensTheServersButClientsStillUseLoopbackAndOverridesWin() {
        Configuration c = LocalFlink.configuration("0.0.0.0", 8081,
                Map.of("execution.checkpointing.unaligned.enabled", "true", "web.submit.enable", "true"));

        assertThat(c.get(RestOptions.BIND_ADDRESS)).isEqualTo("0.0.0.0");
        assertThat(c.get(JobManagerOptions.BIND_HOST)).isEqualTo("0.0.0.0");
        assertThat(c.get(RestOptions.ADDRESS)).isEqualTo("127.0.0.1");
        assertThat(c.toMap()).containsEntry("execution.checkpointing.unaligned.enabled", "true");
        assertThat(c.get(WebOptions.SUBMIT_ENABLE)).isTrue();
        assertThat(LocalFlink.clientAddress("::")).isEqualTo("127.0.0.1");
        assertThat(LocalFlink.clientAddress("10.0.0.5")).isEqualTo("10.0.0.5");
    }
}

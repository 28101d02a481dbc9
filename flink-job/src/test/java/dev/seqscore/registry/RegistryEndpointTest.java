package dev.seqscore.registry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.seqscore.job.JobConfig;
import dev.seqscore.options.ConfigException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where the registry is and its credentials: a file or the environment, never a flag. */
class RegistryEndpointTest {
    @TempDir
    Path dir;

    @Test
    void withoutAUrlThereIsNoRegistry() {
        assertThat(RegistryEndpoint.from("", null, Map.of())).isNull();
        assertThat(JobConfig.parse().get(JobConfig.SCHEMA_REGISTRY)).as("bare Avro by default").isNull();
    }

    @Test
    void aUrlWithCredentialsInItIsRefusedNamingTheSafeForms() {
        assertThatThrownBy(() -> JobConfig.parse("--schema-registry", "https://bob:hunter2@registry:8081"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("web UI")
                .hasMessageContaining("--schema-registry-properties")
                .hasMessageContaining("SEQSCORE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO")
                .hasMessageNotContaining("hunter2");
    }

    @Test
    void onlyHttpUrlsAndTrailingSlashesGo() {
        assertThat(RegistryEndpoint.of("http://apicurio:8080/apis/ccompat/v7/").url())
                .isEqualTo("http://apicurio:8080/apis/ccompat/v7");
        assertThatThrownBy(() -> RegistryEndpoint.of("registry:8081")).isInstanceOf(ConfigException.class)
                .hasMessageContaining("http://");
    }

    @Test
    void credentialsComeFromTheFileAndTheEnvironmentWins() throws Exception {
        Path file = dir.resolve("registry.properties");
        Files.writeString(file, "basic.auth.user.info=file-user:file-pass\nrequest.timeout.ms=1500\n");

        RegistryEndpoint fromFile = RegistryEndpoint.from("http://r:8081", file, Map.of());
        assertThat(fromFile.authorization()).isEqualTo("Basic " + java.util.Base64.getEncoder()
                .encodeToString("file-user:file-pass".getBytes()));
        assertThat(fromFile.requestTimeout()).isEqualTo(Duration.ofMillis(1500));
        assertThat(fromFile.connectTimeout()).isEqualTo(RegistryEndpoint.DEFAULT_CONNECT_TIMEOUT);

        RegistryEndpoint fromEnv = RegistryEndpoint.from("http://r:8081", file,
                Map.of("SEQSCORE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "env-user:env-pass"));
        assertThat(fromEnv.authorization()).isEqualTo("Basic " + java.util.Base64.getEncoder()
                .encodeToString("env-user:env-pass".getBytes()));
        assertThat(fromEnv.toString()).doesNotContain("env-pass").contains("with credentials");
    }

    @Test
    void aBearerTokenIsSentAsSuch() {
        RegistryEndpoint e = RegistryEndpoint.from("http://r:8081", null,
                Map.of("SEQSCORE_SCHEMA_REGISTRY_BEARER_AUTH_TOKEN", "t0k3n"));
        assertThat(e.authorization()).isEqualTo("Bearer t0k3n");
        assertThat(e.toString()).doesNotContain("t0k3n");
    }

    @Test
    void unknownSettingsBothKindsOfCredentialsAndAFileWithoutUrlAreRefused() throws Exception {
        Path file = dir.resolve("r.properties");
        Files.writeString(file, "basic.auth.userinfo=a:b\n");
        assertThatThrownBy(() -> RegistryEndpoint.from("http://r:8081", file, Map.of()))
                .isInstanceOf(ConfigException.class).hasMessageContaining("basic.auth.userinfo");
        assertThatThrownBy(() -> RegistryEndpoint.from("http://r:8081", null, Map.of(
                "SEQSCORE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "a:b",
                "SEQSCORE_SCHEMA_REGISTRY_BEARER_AUTH_TOKEN", "t")))
                .isInstanceOf(ConfigException.class).hasMessageContaining("not both");
        assertThatThrownBy(() -> JobConfig.parse("--schema-registry-properties", file.toString()))
                .isInstanceOf(ConfigException.class).hasMessageContaining("needs --schema-registry");
    }

    @Test
    void theRegistryReadsAvroNotJson() {
        assertThatThrownBy(() -> JobConfig.parse("--schema-registry", "http://r:8081", "--input-format", "json"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("--input-format json");
    }
}

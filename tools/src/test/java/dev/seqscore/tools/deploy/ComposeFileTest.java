package dev.seqscore.tools.deploy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.seqscore.job.JobConfig;
import dev.seqscore.tools.replay.Replay;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * docker-compose.yml checked statically, since no container engine runs here: images pinned to published tags,
 * ports on loopback, every host path present, healthchecks and conditional start order, checkpoints on a volume the
 * JobManager and TaskManagers share, and job and replay flags that the job and the replayer accept.
 */
class ComposeFileTest {
    /**
     * Tags published by their projects (Docker Hub: apache/kafka, library/flink, prom/prometheus, grafana/grafana).
     * Nothing here can reach a registry to ask, so a new tag is added here by hand, after checking it exists.
     */
    private static final Set<String> PUBLISHED_IMAGES = Set.of(
            "apache/kafka:4.2.0", "flink:2.2.1-java17", "prom/prometheus:v2.53.0", "grafana/grafana:11.1.0");
    /** Services that run until stopped; the others (topic setup, submission, replay) do their work and exit. */
    private static final Set<String> LONG_RUNNING = Set.of("kafka", "jobmanager", "taskmanager", "prometheus", "grafana");

    private static ComposeFile compose;

    @BeforeAll
    static void load() throws Exception {
        compose = ComposeFile.load();
    }

    private static List<String> services() {
        List<String> names = new ArrayList<>();
        compose.compose.path("services").fieldNames().forEachRemaining(names::add);
        return names;
    }

    @Test
    void everyImageIsAPinnedPublishedTagAndFlinkMatchesTheBuild() throws Exception {
        for (String s : services()) {
            assertThat(compose.service(s).path("image").asText()).as(s).isIn(PUBLISHED_IMAGES);
        }
        String pom = Files.readString(compose.root.resolve("pom.xml"));
        Matcher flink = Pattern.compile("<flink.version>([^<]+)</flink.version>").matcher(pom);
        Matcher kafka = Pattern.compile("<kafka.version>([^<]+)</kafka.version>").matcher(pom);
        assertThat(flink.find() && kafka.find()).isTrue();
        assertThat(compose.service("jobmanager").path("image").asText()).startsWith("flink:" + flink.group(1) + "-");
        assertThat(compose.service("kafka").path("image").asText()).isEqualTo("apache/kafka:" + kafka.group(1));
    }

    @Test
    void everyPublishedPortIsBoundToLoopback() {
        int published = 0;
        for (String s : services()) {
            for (JsonNode port : compose.service(s).path("ports")) {
                assertThat(port.asText()).as(s).startsWith("127.0.0.1:");
                published++;
            }
        }
        assertThat(published).as("the web UI, Kafka, Prometheus and Grafana are reachable").isGreaterThanOrEqualTo(4);
    }

    @Test
    void everyHostPathExistsOrIsABuildOutputOrTheDataDirectory() {
        for (String s : services()) {
            for (JsonNode volume : compose.service(s).path("volumes")) {
                String host = volume.asText().split(":")[0];
                if (host.startsWith("${SEQSCORE_DATA_DIR")) {
                    continue;
                }
                if (!host.startsWith(".")) {
                    assertThat(compose.compose.path("volumes").has(host)).as(s + ": named volume " + host).isTrue();
                    continue;
                }
                Path p = compose.root.resolve(host).normalize();
                if (p.endsWith("target")) {
                    assertThat(p.getParent().resolve("pom.xml")).as(s + ": built by Maven: " + host).isRegularFile();
                } else {
                    assertThat(p).as(s + ": " + host).exists();
                }
            }
        }
    }

    @Test
    void longRunningServicesHaveHealthchecksAndEveryDependencyWaitsForACondition() {
        for (String s : services()) {
            JsonNode service = compose.service(s);
            if (LONG_RUNNING.contains(s)) {
                assertThat(service.path("healthcheck").path("test").isArray()).as(s + " healthcheck").isTrue();
                assertThat(service.path("restart").asText()).as(s).isEqualTo("unless-stopped");
            }
            Iterator<Map.Entry<String, JsonNode>> deps = service.path("depends_on").fields();
            while (deps.hasNext()) {
                Map.Entry<String, JsonNode> d = deps.next();
                assertThat(d.getValue().path("condition").asText()).as(s + " -> " + d.getKey())
                        .isIn("service_healthy", "service_completed_successfully");
                if (d.getValue().path("condition").asText().equals("service_healthy")) {
                    assertThat(LONG_RUNNING).as(s + " waits for the health of " + d.getKey()).contains(d.getKey());
                }
            }
        }
    }

    @Test
    void checkpointsGoToAVolumeSharedByTheJobManagerAndTaskManagersWithRocksDbAndTheReporter() {
        for (String s : List.of("jobmanager", "taskmanager")) {
            Map<String, String> conf = compose.flinkProperties(s);
            assertThat(conf).as(s).containsEntry("state.backend.type", "rocksdb")
                    .containsEntry("execution.checkpointing.incremental", "true")
                    .containsEntry("metrics.reporter.prom.port", "9249")
                    .containsKey("metrics.reporter.prom.factory.class");
            assertThat(conf.get("execution.checkpointing.dir")).as(s).startsWith("file:///flink-state/");
            assertThat(conf.get("execution.checkpointing.savepoint-dir")).as(s).startsWith("file:///flink-state/");
            assertThat(compose.service(s).path("volumes").toString()).as(s).contains("flink-state:/flink-state");
        }
        assertThat(compose.flinkProperties("jobmanager")).isEqualTo(compose.flinkProperties("taskmanager"));
    }

    @Test
    void theSubmissionRunsTheShadedJarMavenBuildsWithFlagsTheJobAccepts() throws Exception {
        String script = compose.script("submit");
        Matcher jar = Pattern.compile("/opt/seqscore/jar/(seqscore-flink-job-[^ ]+-shaded\\.jar)").matcher(script);
        assertThat(jar.find()).as(script).isTrue();
        String pom = Files.readString(compose.root.resolve("pom.xml"));
        Matcher version = Pattern.compile("<artifactId>seqscore-parent</artifactId>\\s*<version>([^<]+)</version>")
                .matcher(pom);
        assertThat(version.find()).isTrue();
        assertThat(jar.group(1)).isEqualTo("seqscore-flink-job-" + version.group(1) + "-shaded.jar");
        assertThat(script).contains("flink run").contains("$$(cat /opt/seqscore/deploy/job.args)");
        assertThat(compose.service("submit").path("volumes").toString())
                .contains("./flink-job/target:/opt/seqscore/jar").contains("./deploy/flink:/opt/seqscore/deploy");

        List<String> args = compose.args("job.args");
        args.addAll(List.of("--bootstrap-servers", "kafka:19092"));
        JobConfig job = JobConfig.parse(args.toArray(new String[0]));
        assertThat(job.model()).as("the jar's own model").isNull();
        assertThat(job.checkpointDir()).as("the cluster's, on the shared volume").isNull();
    }

    @Test
    void theReplayerPassesFlagsReplayAccepts() throws Exception {
        String script = compose.script("replayer");
        assertThat(script).contains("dev.seqscore.tools.replay.Replay").contains("$$(cat /opt/seqscore/deploy/replay.args)");
        List<String> args = compose.args("replay.args");
        assertThat(Replay.OPTIONS.parse(args.toArray(new String[0])).get(Replay.FORMAT)).isNotNull();
    }

    @Test
    void dockerComposeItselfAcceptsTheFile() throws Exception {
        Path binary = Path.of("/usr/bin/docker-compose");
        assumeTrue(Files.isExecutable(binary), "docker-compose is not installed (apt-get install docker-compose; "
                + ".ci/run does): only the checks above ran");
        Process p = new ProcessBuilder(binary.toString(), "-f", "docker-compose.yml", "config", "-q")
                .directory(compose.root.toFile()).redirectErrorStream(true).start();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(new String(p.getInputStream().readAllBytes())).isZero();
    }
}

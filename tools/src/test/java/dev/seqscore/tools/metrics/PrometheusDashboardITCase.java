package dev.seqscore.tools.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.seqscore.features.Scoring;
import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.offline.files.EventFileReader;
import dev.seqscore.offline.files.FileRecord;
import dev.seqscore.job.JobConfig;
import dev.seqscore.job.SeqScoreJob;
import dev.seqscore.avro.ModelEvent;
import dev.seqscore.job.AvroRecords;
import dev.seqscore.kafka.EmbeddedKafkaExtension;
import dev.seqscore.lifecycle.ModelControl;
import dev.seqscore.lifecycle.PublishedBundles;
import dev.seqscore.metrics.JobMetrics;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.testing.KafkaTopics;
import dev.seqscore.testing.RepoPaths;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The metrics as a dashboard sees them: the job on a MiniCluster with Flink's Prometheus reporter
 * ({@link PrometheusReporting}), real Taobao clicks through a real Kafka source, scraped by a real Prometheus server
 * every second. Every PromQL expression of the Grafana dashboard in {@code deploy/grafana/} must return at least one
 * series, so the dashboard cannot drift from the exported names; and the job's counters, read through Prometheus,
 * must equal what was produced. A shadow candidate (the model's weights under another version) is published on the
 * control topic before the clicks, so that the shadow panels have series too, and the candidate's metrics are checked
 * against what identical weights must give: every click shadowed, no disagreement, no score difference. Last, the
 * candidate is promoted: the swap is counted and marked by the dashboard's annotation.
 *
 * <p>Exported names: Flink prefixes an operator's metric with {@code flink_taskmanager_job_task_operator_}, adds the
 * key of a key/value group to the name (and its value as a label), and replaces characters outside
 * {@code [a-zA-Z0-9:_]} in label values with {@code _}.
 */
class PrometheusDashboardITCase {
    static final Path DASHBOARD = Path.of("deploy/grafana/dashboards/seqscore.json");
    private static final int EVENTS = 5_000;
    private static final int GARBAGE = 3;
    private static final int PARTITIONS = 2;
    private static final Duration DEADLINE = Duration.ofMinutes(3);
    /** Grafana's {@code $__rate_interval} for a 1 s scrape interval: four scrapes, with room. */
    private static final String RATE_INTERVAL = "10s";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String OPERATOR = "flink_taskmanager_job_task_operator_";

    @RegisterExtension
    static final EmbeddedKafkaExtension kafka = new EmbeddedKafkaExtension();

    @Test
    void everyDashboardQueryReturnsSeriesFromARealScrapeOfTheJob() throws Exception {
        Path prometheusBinary = PrometheusServer.requireBinary();
        Path data = RepoPaths.requireData("taobao/UserBehavior_timeordered_110k.csv");
        Path root = RepoPaths.repoRoot();
        Map<String, String> queries = dashboardQueries(root.resolve(DASHBOARD));
        assertThat(queries).as("PromQL expressions in " + DASHBOARD).isNotEmpty();
        List<ClickEvent> events = firstEvents(data, EVENTS);
        ModelBundle bundle = ModelBundle.load(RepoPaths.defaultModel());

        String suffix = UUID.randomUUID().toString().substring(0, 8);
        Path workDir = root.resolve("tools/target/prometheus-it-" + suffix);
        // The shadow candidate: the same weights under another model version, so both models score alike.
        Path candidateDir = PublishedBundles.retrained(RepoPaths.defaultModel(), workDir.resolve("candidate"),
                "-candidate");
        String servingVersion = bundle.spec().served(Scoring.INCREMENTAL).modelVersion();
        String candidateVersion = servingVersion + "-candidate";
        int reporterPort = PrometheusServer.freePort();
        try (PrometheusServer prometheus = PrometheusServer.start(prometheusBinary, workDir,
                List.of("127.0.0.1:" + reporterPort))) {
            String in = "clicks-" + suffix;
            String control = "model-control-" + suffix;
            String status = "model-status-" + suffix;
            kafka.createTopics(PARTITIONS, in);
            kafka.createTopics(1, "alerts-" + suffix, "scores-" + suffix, "dlq-" + suffix, control, status,
                    "shadow-scores-" + suffix);

            Configuration conf = PrometheusReporting.configuration(reporterPort);
            StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(PARTITIONS, conf);
            SeqScoreJob.assemble(env, JobConfig.parse(
                    "--bootstrap-servers", kafka.bootstrapServers(),
                    "--input-topic", in, "--alerts-topic", "alerts-" + suffix,
                    "--scores-topic", "scores-" + suffix, "--dead-letter-topic", "dlq-" + suffix,
                    "--model-control-topic", control, "--model-status-topic", status,
                    "--shadow-scores-topic", "shadow-scores-" + suffix,
                    "--group-id", "seqscore-" + suffix, "--transactional-id-prefix", "seqscore-" + suffix,
                    "--starting-offsets", "earliest", "--checkpoint-interval", "1s",
                    "--checkpoint-dir", workDir.resolve("checkpoints").toUri().toString(),
                    "--parallelism", Integer.toString(PARTITIONS)), bundle);
            JobClient job = env.executeAsync("SeqScore metrics");
            try {
                // The candidate shadows from event time 0: published, and accepted by every scorer subtask, before
                // any click is in (so no watermark can have passed it), it scores every click beside the model.
                KafkaTopics.produce(kafka.bootstrapServers(), List.of(new ProducerRecord<>(control,
                        "cand".getBytes(StandardCharsets.UTF_8), ModelControl.publish("cand", ModelControl.Role.SHADOW,
                                candidateDir.toString(), 0).toJson().getBytes(StandardCharsets.UTF_8))));
                List<ModelEvent> answers = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), status, PARTITIONS,
                        DEADLINE, r -> AvroRecords.decode(r.value(), ModelEvent.class));
                assertThat(answers).extracting(a -> a.getStatus().toString()).containsOnly("ACCEPTED");
                produce(kafka.bootstrapServers(), in, events);

                // Every click and every garbage record passed validation's counter; every click was scored.
                awaitValue(prometheus, "sum(" + OPERATOR + JobMetrics.EVENTS_RECEIVED + ")",
                        EVENTS + GARBAGE + PARTITIONS);
                awaitValue(prometheus, "sum(" + OPERATOR + JobMetrics.EVENTS_SCORED + ")", EVENTS);
                awaitValue(prometheus, "sum(" + OPERATOR + JobMetrics.REASON + "_" + JobMetrics.DEAD_LETTERS
                        + "{reason=\"UNDECODABLE\"})", GARBAGE);
                awaitValue(prometheus, "sum(" + OPERATOR + JobMetrics.MODEL_VERSION + "_" + JobMetrics.MODEL_INFO
                        + "{model_version=\"" + labelValue(servingVersion) + "\"})", PARTITIONS);
                // The Kafka source's own lag metric: nothing left to read once every record is in.
                awaitValue(prometheus, "sum(" + OPERATOR + "pendingRecords)", 0);

                // The candidate scored every click beside the model; with the same weights the two never disagree.
                String shadow = OPERATOR + JobMetrics.SHADOW_MODEL_VERSION + "_";
                String perOutput = shadow + JobMetrics.OUTPUT + "_";
                String candidate = "{" + JobMetrics.SHADOW_MODEL_VERSION + "=\"" + labelValue(candidateVersion)
                        + "\"}";
                awaitValue(prometheus, "sum(" + shadow + JobMetrics.SHADOW_EVENTS_SCORED + candidate + ")", EVENTS);
                awaitValue(prometheus, "sum(" + shadow + JobMetrics.SHADOW_MODEL_INFO + candidate + ")", PARTITIONS);
                int outputs = bundle.spec().served(Scoring.INCREMENTAL).outputNames().size();
                awaitValue(prometheus, "count(" + perOutput + JobMetrics.SHADOW_DISAGREEMENT_SHARE + candidate
                        + " == 0)", PARTITIONS * outputs);
                awaitValue(prometheus, "sum(" + perOutput + JobMetrics.SHADOW_DISAGREEMENTS + candidate + ")", 0);
                awaitValue(prometheus, "max(" + perOutput + JobMetrics.SHADOW_MEAN_ABS_DIFF + candidate + ")", 0);
                awaitValue(prometheus, "sum(" + perOutput + JobMetrics.SHADOW_ABOVE_THRESHOLD + candidate + ") - sum("
                        + perOutput + JobMetrics.SHADOW_SERVING_ABOVE_THRESHOLD + candidate + ")", 0);

                // Every shadow metric is on the dashboard, and so are the model version and the swaps.
                for (String name : List.of(JobMetrics.SHADOW_DISAGREEMENT_SHARE, JobMetrics.SHADOW_DISAGREEMENTS,
                        JobMetrics.SHADOW_EVENTS_SCORED, JobMetrics.SHADOW_ALERT_RATE,
                        JobMetrics.SHADOW_SERVING_ALERT_RATE, JobMetrics.SHADOW_ABOVE_THRESHOLD,
                        JobMetrics.SHADOW_SERVING_ABOVE_THRESHOLD, JobMetrics.SHADOW_MEAN_ABS_DIFF,
                        JobMetrics.SHADOW_SCORE_PPM, JobMetrics.SHADOW_SERVING_SCORE_PPM,
                        JobMetrics.SHADOW_CALL_MICROS, JobMetrics.SHADOW_MODEL_INFO, JobMetrics.MODEL_INFO,
                        JobMetrics.MODEL_SWAPS)) {
                    assertThat(queries.values()).as("a dashboard query of %s", name)
                            .anyMatch(q -> q.matches(".*_" + name + "\\b.*"));
                }
                Map<String, String> empty = awaitSeries(prometheus, queries);
                assertThat(empty).as("dashboard queries without a series after %s (the reporter's page is in %s)",
                        DEADLINE, workDir.resolve("flink-metrics.txt")).isEmpty();
                // The swap marks: no swap yet, no mark.
                Map<String, String> annotations = dashboardAnnotations(root.resolve(DASHBOARD));
                assertThat(annotations).containsKey("Model swaps");
                String swapMarks = annotations.get("Model swaps");
                assertThat(prometheus.query(swapMarks)).as("%s before any swap", swapMarks).isEmpty();

                // Then the candidate is promoted after every click so far (a day after the far-later ones), and one
                // more click per partition moves the watermark past that: each subtask swaps, and the swap is marked.
                Instant promoteAt = events.get(events.size() - 1).getEventTime().plus(Duration.ofDays(3));
                KafkaTopics.produce(kafka.bootstrapServers(), List.of(new ProducerRecord<>(control,
                        "promote".getBytes(StandardCharsets.UTF_8), ModelControl.of("promote",
                                ModelControl.Action.PROMOTE, promoteAt.toEpochMilli()).toJson()
                                .getBytes(StandardCharsets.UTF_8))));
                awaitAnswers(kafka.bootstrapServers(), status, "promote", PARTITIONS);
                produceAt(kafka.bootstrapServers(), in, events.get(0), promoteAt.plus(Duration.ofDays(1)));
                awaitValue(prometheus, "sum(" + OPERATOR + JobMetrics.MODEL_SWAPS + ")", PARTITIONS);
                awaitValue(prometheus, "sum(" + OPERATOR + JobMetrics.MODEL_VERSION + "_" + JobMetrics.MODEL_INFO
                        + "{model_version=\"" + labelValue(candidateVersion) + "\"})", PARTITIONS);
                awaitValue(prometheus, "count(" + swapMarks + ")", 1);
            } catch (Throwable t) {
                System.err.println("Prometheus targets: " + prometheus.targets() + "\nlog:\n" + prometheus.log());
                throw t;
            } finally {
                // Every exported name, to write or debug dashboards against.
                Files.writeString(workDir.resolve("flink-metrics.txt"), scrape(reporterPort));
                job.cancel().get();
            }
        }
    }

    @Test
    void deployedScrapeConfigIsValidForPrometheus() throws Exception {
        Path promtool = PrometheusServer.requireBinary().resolveSibling("promtool");
        Assumptions.assumeTrue(Files.isExecutable(promtool),
                () -> "skipped: no promtool next to the prometheus binary at " + promtool);
        Path config = RepoPaths.repoRoot().resolve("deploy/prometheus/prometheus.yml");
        Process p = new ProcessBuilder(promtool.toString(), "check", "config", config.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as("promtool check config %s:%n%s", config, out).isZero();
    }

    /**
     * Panel title and target refId to expression, for every target of every panel (rows included), with each
     * template variable replaced by its "All" value, as Grafana sends them with "All" selected.
     */
    static Map<String, String> dashboardQueries(Path dashboard) throws IOException {
        JsonNode root = JSON.readTree(dashboard.toFile());
        Map<String, String> variables = new LinkedHashMap<>();
        variables.put("__rate_interval", RATE_INTERVAL);
        for (JsonNode v : root.path("templating").path("list")) {
            if (v.hasNonNull("allValue")) {
                variables.put(v.path("name").asText(), v.path("allValue").asText());
            }
        }
        Map<String, String> out = new LinkedHashMap<>();
        collect(root.path("panels"), variables, out);
        return out;
    }

    /** Annotation name to its PromQL expression, with the template variables resolved as for the panels. */
    static Map<String, String> dashboardAnnotations(Path dashboard) throws IOException {
        JsonNode root = JSON.readTree(dashboard.toFile());
        Map<String, String> variables = new LinkedHashMap<>();
        for (JsonNode v : root.path("templating").path("list")) {
            if (v.hasNonNull("allValue")) {
                variables.put(v.path("name").asText(), v.path("allValue").asText());
            }
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (JsonNode a : root.path("annotations").path("list")) {
            String expr = resolve(a.path("expr").asText(""), variables);
            if (!expr.isBlank()) {
                out.put(a.path("name").asText(), expr);
            }
        }
        return out;
    }

    private static String resolve(String expr, Map<String, String> variables) {
        for (Map.Entry<String, String> v : variables.entrySet()) {
            expr = expr.replace("${" + v.getKey() + "}", v.getValue()).replace("$" + v.getKey(), v.getValue());
        }
        return expr;
    }

    private static void collect(JsonNode panels, Map<String, String> variables, Map<String, String> out) {
        for (JsonNode panel : panels) {
            for (JsonNode target : panel.path("targets")) {
                String expr = target.path("expr").asText("");
                for (Map.Entry<String, String> v : variables.entrySet()) {
                    expr = expr.replace("${" + v.getKey() + "}", v.getValue()).replace("$" + v.getKey(), v.getValue());
                }
                if (!expr.isBlank()) {
                    assertThat(expr).as("an unresolved template variable in panel %s", panel.path("title"))
                            .doesNotContain("$");
                    out.put(panel.path("title").asText() + " [" + target.path("refId").asText() + "]", expr);
                }
            }
            collect(panel.path("panels"), variables, out);
        }
    }

    /** What Flink's Prometheus reporter makes of a label value (its default filterLabelValueCharacters). */
    private static String labelValue(String v) {
        return v.replaceAll("[^a-zA-Z0-9:_]", "_");
    }

    /** Waits until every query returns a series; returns those that still do not at the deadline. */
    private static Map<String, String> awaitSeries(PrometheusServer prometheus, Map<String, String> queries)
            throws Exception {
        Map<String, String> empty = new LinkedHashMap<>(queries);
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        while (!empty.isEmpty() && System.nanoTime() < deadline) {
            for (var it = empty.entrySet().iterator(); it.hasNext(); ) {
                if (prometheus.query(it.next().getValue()).size() > 0) {
                    it.remove();
                }
            }
            LockSupport.parkNanos(Duration.ofMillis(500).toNanos());
        }
        return empty;
    }

    private static void awaitValue(PrometheusServer prometheus, String expr, double expected) throws Exception {
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        JsonNode last = null;
        while (System.nanoTime() < deadline) {
            last = prometheus.query(expr);
            if (last.size() == 1 && last.get(0).path("value").get(1).asDouble() == expected) {
                return;
            }
            LockSupport.parkNanos(Duration.ofMillis(500).toNanos());
        }
        throw new AssertionError(expr + " did not reach " + expected + " within " + DEADLINE + "; last: " + last);
    }

    /** The reporter's own page, as Prometheus scrapes it. */
    private static String scrape(int port) {
        try {
            return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(
                    PrometheusReporting.scrapeUrl(port))).build(), HttpResponse.BodyHandlers.ofString()).body();
        } catch (IOException | InterruptedException e) {
            return "(scrape failed: " + e + ")";
        }
    }

    /** Waits for {@code count} ACCEPTED answers to one control request on the status topic. */
    private static void awaitAnswers(String bootstrap, String status, String requestId, int count) {
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        List<ModelEvent> answers = List.of();
        while (System.nanoTime() < deadline) {
            answers = KafkaTopics.readCommitted(bootstrap, status, r -> AvroRecords.decode(r.value(), ModelEvent.class))
                    .stream().filter(a -> requestId.equals(String.valueOf(a.getRequestId()))
                            && !"ACTIVE".equals(a.getStatus().toString())).toList();
            if (answers.size() >= count) {
                assertThat(answers).extracting(a -> a.getStatus().toString()).containsOnly("ACCEPTED");
                return;
            }
            LockSupport.parkNanos(Duration.ofMillis(500).toNanos());
        }
        throw new AssertionError(count + " answers to " + requestId + " not committed within " + DEADLINE + ": "
                + answers);
    }

    /** One click per partition at {@code at}: the watermark (the minimum over partitions) follows. */
    private static void produceAt(String bootstrap, String topic, ClickEvent like, Instant at) {
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) {
            ClickEvent c = ClickEvent.newBuilder(like).setUserId("later-" + p).setEventTime(at).build();
            records.add(new ProducerRecord<>(topic, p, c.getUserId().getBytes(StandardCharsets.UTF_8),
                    ClickEventAvro.encode(c)));
        }
        KafkaTopics.produce(bootstrap, records);
    }

    /** The first valid clicks of the time-ordered sample. */
    private static List<ClickEvent> firstEvents(Path file, int n) throws IOException {
        try (Stream<FileRecord> lines = EventFileReader.lines(file, EventFileReader.Format.TAOBAO)) {
            return lines.filter(FileRecord::isValid).limit(n).map(FileRecord::event).toList();
        }
    }

    /**
     * The clicks keyed by user, a few undecodable records, then one far-later click per partition so that the
     * watermark (the minimum over partitions) passes every real click and each is scored.
     */
    private static void produce(String bootstrap, String topic, List<ClickEvent> events) {
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (ClickEvent e : events) {
            records.add(new ProducerRecord<>(topic, e.getUserId().getBytes(StandardCharsets.UTF_8),
                    ClickEventAvro.encode(e)));
        }
        for (int i = 0; i < GARBAGE; i++) {
            records.add(new ProducerRecord<>(topic, i % PARTITIONS, null, ("not avro " + i).getBytes(StandardCharsets.UTF_8)));
        }
        Instant later = events.get(events.size() - 1).getEventTime().plus(Duration.ofDays(2));
        for (int p = 0; p < PARTITIONS; p++) {
            ClickEvent flush = ClickEvent.newBuilder(events.get(0)).setUserId("flush-" + p).setEventTime(later).build();
            records.add(new ProducerRecord<>(topic, p, flush.getUserId().getBytes(StandardCharsets.UTF_8),
                    ClickEventAvro.encode(flush)));
        }
        KafkaTopics.produce(bootstrap, records);
    }
}

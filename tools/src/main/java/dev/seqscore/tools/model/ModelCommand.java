package dev.seqscore.tools.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.seqscore.avro.ModelEvent;
import dev.seqscore.features.Scoring;
import dev.seqscore.job.JobConfig;
import dev.seqscore.lifecycle.GoldenCheck;
import dev.seqscore.lifecycle.ModelControl;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.model.OnnxScorer;
import dev.seqscore.options.CommandLine;
import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Option;
import dev.seqscore.options.OptionSet;
import dev.seqscore.options.OptionValues;
import dev.seqscore.options.Timestamps;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * {@code bin/seqscore model publish|promote|withdraw}: announces a model change to a running job on its model control
 * topic, then waits for every scorer subtask's answer on the status topic and prints them. A publish checks the
 * bundle here first when it is readable here (its graphs against its spec, its golden vectors), so that a broken
 * export never reaches the job. The change takes effect at an event time: {@code --effective-at}, or the job's
 * scorer watermark (read from Flink's REST API) plus {@code --lead}.
 *
 * <p>Exit codes: 0 every subtask accepted; 2 a bad command line or bundle; 3 refused; 4 no (complete) answer in time.
 */
public final class ModelCommand {
    static final Option<String> BOOTSTRAP_SERVERS = Option.nonBlank("bootstrap-servers", "localhost:9092",
            "Kafka bootstrap servers");
    static final Option<String> CONTROL_TOPIC = Option.nonBlank("model-control-topic", "model-control",
            "the job's --model-control-topic");
    static final Option<String> STATUS_TOPIC = Option.nonBlank("model-status-topic", "model-status",
            "the job's --model-status-topic, where every scorer subtask answers");
    static final Option<String> ROLE = Option.oneOf("role", "", "publish: serve (swap to it) or shadow (score beside "
            + "the serving model without alerting)", "serve", "shadow");
    static final Option<Long> EFFECTIVE_AT = Timestamps.option("effective-at",
            "the event time from which the change applies; default: the job's scorer watermark plus --lead");
    static final Option<String> REST = Option.string("rest", "http://localhost:8081",
            "Flink's REST API, to read the scorer's watermark when --effective-at is not given");
    static final Option<Duration> LEAD = Option.positiveDuration("lead", "30s",
            "how far past the scorer's watermark the change takes effect, in event time: long enough for the "
                    + "record to reach every subtask before their watermark passes it");
    static final Option<String> REQUEST_ID = Option.string("request-id", "",
            "the request's id (a repeat with the same id is applied once); default: a random one");
    static final Option<Duration> TIMEOUT = Option.positiveDuration("timeout", "2m",
            "how long to wait for every subtask's answer (answers are written exactly once, so they appear with "
                    + "the job's next checkpoint)");
    static final Option<Boolean> REGISTRY_FRAMED = Option.bool("registry-framed", "false",
            "the job writes registry-framed Avro (it runs with --schema-registry): skip the 5-byte framing");
    static final Option<Boolean> SKIP_CHECK = Option.bool("skip-check", "false",
            "publish without checking the bundle here (the job checks it anyway)");
    public static final OptionSet OPTIONS = new OptionSet()
            .add(ROLE, EFFECTIVE_AT, REST, LEAD, BOOTSTRAP_SERVERS, JobConfig.KAFKA_PROPERTIES, CONTROL_TOPIC,
                    STATUS_TOPIC, REQUEST_ID, TIMEOUT, REGISTRY_FRAMED, SKIP_CHECK, OptionSet.HELP);
    static final String USAGE = OPTIONS.usage("bin/seqscore model publish DIR --role serve|shadow [options]\n"
            + "       bin/seqscore model promote|withdraw [options]",
            "Announces a model change to a running job (its --model-control-topic) and prints every scorer "
                    + "subtask's answer. DIR is a bundle directory or URI every TaskManager can read (file://, "
                    + "s3://, hdfs://). promote makes the shadow candidate the serving model; withdraw drops it.");

    private static final ObjectMapper JSON = new ObjectMapper();

    private ModelCommand() {}

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    public static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length == 0 || args[0].equals("--help")) {
            (args.length == 0 ? err : out).println(USAGE.stripTrailing());
            return args.length == 0 ? CommandLine.USAGE_ERROR : 0;
        }
        ModelControl.Action action;
        try {
            action = ModelControl.Action.valueOf(args[0].toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            err.println("model: unknown command '" + args[0] + "': publish, promote or withdraw");
            return CommandLine.USAGE_ERROR;
        }
        int from = 1;
        String bundle = null;
        if (action == ModelControl.Action.PUBLISH) {
            if (args.length < 2 || args[1].startsWith("--")) {
                if (args.length >= 2 && args[1].equals("--help")) {
                    out.println(USAGE.stripTrailing());
                    return 0;
                }
                err.println("model publish: give the bundle: bin/seqscore model publish DIR --role serve|shadow");
                return CommandLine.USAGE_ERROR;
            }
            bundle = args[1];
            from = 2;
        }
        String[] rest = java.util.Arrays.copyOfRange(args, from, args.length);
        OptionValues v;
        try {
            v = new CommandLine(OPTIONS, USAGE.stripTrailing()).errorPrefix("model " + args[0] + ": ")
                    .parse(rest, out, err, x -> x);
        } catch (ConfigException e) {
            return CommandLine.USAGE_ERROR;
        }
        if (v == null) {
            return 0;
        }
        try {
            return announce(action, bundle, v, out, err);
        } catch (ConfigException e) {
            err.println("model " + args[0] + ": " + e.getMessage());
            return CommandLine.USAGE_ERROR;
        } catch (IOException | RuntimeException e) {
            err.println("model " + args[0] + ": " + e.getMessage());
            return 1;
        }
    }

    private static int announce(ModelControl.Action action, String bundle, OptionValues v, PrintStream out,
            PrintStream err) throws IOException {
        ModelControl.Role role = null;
        String uri = null;
        if (action == ModelControl.Action.PUBLISH) {
            if (v.get(ROLE) == null || v.get(ROLE).isBlank()) {
                throw new ConfigException("--role serve or --role shadow is required");
            }
            role = ModelControl.Role.valueOf(v.get(ROLE).toUpperCase(java.util.Locale.ROOT));
            uri = locate(bundle);
            if (!v.get(SKIP_CHECK)) {
                check(uri, out);
            }
        } else if (v.given(ROLE)) {
            throw new ConfigException("--role is for publish only");
        }
        long effectiveAt = v.get(EFFECTIVE_AT) != null ? v.get(EFFECTIVE_AT)
                : scorerWatermark(v.get(REST)) + v.get(LEAD).toMillis();
        String id = v.get(REQUEST_ID) == null || v.get(REQUEST_ID).isBlank()
                ? UUID.randomUUID().toString() : v.get(REQUEST_ID).trim();
        ModelControl c = new ModelControl(id, action, role, uri, effectiveAt);

        long sentAt = System.currentTimeMillis();
        Properties p = kafka(v);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<String, String> producer =
                new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            producer.send(new ProducerRecord<>(v.get(CONTROL_TOPIC), id, c.toJson())).get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IOException("cannot write to " + v.get(CONTROL_TOPIC) + ": " + e.getCause().getMessage(), e);
        }
        out.println("sent " + c.toJson() + " (effective from " + Timestamps.format(effectiveAt) + ")");
        return await(c, v, sentAt, out, err);
    }

    /**
     * The Kafka client properties, as the job reads its own: {@code --kafka-properties FILE} and
     * {@code SEQSCORE_KAFKA_*} variables for security settings and credentials, then the bootstrap servers.
     */
    static Properties kafka(OptionValues v) {
        List<String> args = new ArrayList<>(List.of("--bootstrap-servers", v.get(BOOTSTRAP_SERVERS)));
        if (v.get(JobConfig.KAFKA_PROPERTIES) != null) {
            args.addAll(List.of("--kafka-properties", v.get(JobConfig.KAFKA_PROPERTIES).toString()));
        }
        Properties p = JobConfig.parse(args.toArray(String[]::new)).kafkaProperties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, v.get(BOOTSTRAP_SERVERS));
        return p;
    }

    /** A local directory as an absolute path; a URI as given. */
    public static String locate(String bundle) {
        if (bundle.contains("://")) {
            return bundle;
        }
        Path dir = Path.of(bundle).toAbsolutePath().normalize();
        if (!Files.isDirectory(dir)) {
            throw new ConfigException("model bundle directory " + dir + " does not exist");
        }
        return dir.toString();
    }

    /** The bundle's graphs against its spec, and its golden vectors, as the job will check them. */
    public static void check(String uri, PrintStream out) {
        ModelBundle b;
        try {
            b = ModelBundle.locate(uri);
            b.validate();
        } catch (IllegalArgumentException e) {
            throw new ConfigException("bundle " + uri + " is not servable: " + e.getMessage());
        }
        List<Scoring> served = b.hasStreaming() ? List.of(Scoring.INCREMENTAL, Scoring.WINDOWED)
                : List.of(Scoring.WINDOWED);
        for (Scoring s : served) {
            try (OnnxScorer scorer = new OnnxScorer(b, s, 1)) {
                int n = GoldenCheck.verify(uri, b, s, scorer);
                out.println("checked " + uri + " (" + b.served(s).modelVersion() + ", " + s.name().toLowerCase()
                        + "): " + n + " golden events score as exported");
            } catch (IllegalArgumentException e) {
                throw new ConfigException("bundle " + uri + " is not servable: " + e.getMessage());
            }
        }
    }

    /**
     * The largest watermark the running job's scorer subtasks have passed on: every event up to it is scored. Not
     * the vertex's {@code currentInputWatermark}: with the control topic the scorer has two inputs, and that one is
     * the minimum over both, which the idle control input keeps at Long.MIN_VALUE. The scorer's input watermark is
     * ahead of it by at most the events it is scoring; {@code --lead} covers that.
     */
    static long scorerWatermark(String rest) throws IOException {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        String base = rest.endsWith("/") ? rest : rest + "/";
        JsonNode jobs = get(http, base + "jobs/overview");
        for (JsonNode j : jobs.get("jobs")) {
            if (!j.get("state").asText().equals("RUNNING")) {
                continue;
            }
            String jid = j.get("jid").asText();
            for (JsonNode vertex : get(http, base + "jobs/" + jid).get("vertices")) {
                if (!vertex.get("name").asText().contains("Score user sequences")) {
                    continue;
                }
                String metrics = base + "jobs/" + jid + "/vertices/" + vertex.get("id").asText() + "/metrics";
                // Flink's REST API fetches metrics on demand: the first answers may not list them yet.
                List<String> names = new ArrayList<>();
                long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
                while (names.isEmpty() && System.nanoTime() < deadline) {
                    for (JsonNode m : get(http, metrics)) {
                        String id = m.get("id").asText();
                        if (id.matches("\\d+\\.Score_user_sequences\\.currentOutputWatermark")) {
                            names.add(id);
                        }
                    }
                    if (names.isEmpty()) {
                        java.util.concurrent.locks.LockSupport.parkNanos(Duration.ofMillis(500).toNanos());
                    }
                }
                if (names.isEmpty()) {
                    throw new ConfigException("the scorer of job " + jid + " reports no watermark metric: give --effective-at");
                }
                long max = Long.MIN_VALUE;
                for (JsonNode m : get(http, metrics + "?get=" + String.join(",", names))) {
                    max = Math.max(max, (long) Double.parseDouble(m.get("value").asText()));
                }
                if (max == Long.MIN_VALUE) {
                    throw new ConfigException("the scorer of job " + jid + " has no watermark yet (no clicks?): give "
                            + "--effective-at");
                }
                return max;
            }
        }
        throw new ConfigException("no running SeqScore job at " + rest + ": give --rest or --effective-at");
    }

    private static JsonNode get(HttpClient http, String url) throws IOException {
        try {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url))
                    .timeout(Duration.ofSeconds(5)).GET().build(), HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) {
                throw new IOException("GET " + url + ": HTTP " + r.statusCode());
            }
            return JSON.readTree(r.body());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } catch (java.net.ConnectException e) {
            throw new ConfigException("cannot reach Flink's REST API at " + url + ": give --rest or --effective-at");
        }
    }

    /** Waits for every scorer subtask's answer to {@code c} and prints them; returns the exit code. */
    private static int await(ModelControl c, OptionValues v, long sentAt, PrintStream out, PrintStream err) {
        Properties p = kafka(v);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        SpecificDatumReader<ModelEvent> reader = new SpecificDatumReader<>(ModelEvent.class);
        int skip = v.get(REGISTRY_FRAMED) ? 5 : 0;
        Map<Integer, ModelEvent> answers = new HashMap<>();
        int expected = Integer.MAX_VALUE;
        long deadline = System.currentTimeMillis() + v.get(TIMEOUT).toMillis();
        try (KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = consumer.partitionsFor(v.get(STATUS_TOPIC), Duration.ofSeconds(30)).stream()
                    .map(i -> new TopicPartition(i.topic(), i.partition())).toList();
            consumer.assign(parts);
            Map<TopicPartition, Long> at = new HashMap<>();
            parts.forEach(tp -> at.put(tp, sentAt - 60_000));
            Map<TopicPartition, OffsetAndTimestamp> offsets = consumer.offsetsForTimes(at);
            for (TopicPartition tp : parts) {
                OffsetAndTimestamp o = offsets.get(tp);
                if (o == null) {
                    consumer.seekToEnd(List.of(tp));
                } else {
                    consumer.seek(tp, o.offset());
                }
            }
            while (answers.size() < expected && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    byte[] b = r.value();
                    if (b == null || b.length <= skip) {
                        continue;
                    }
                    ModelEvent e = reader.read(null, DecoderFactory.get().binaryDecoder(b, skip, b.length - skip,
                            null));
                    if (!c.requestId().equals(e.getRequestId()) || e.getStatus().equals("ACTIVE")) {
                        continue;
                    }
                    if (answers.put(e.getSubtask(), e) == null) {
                        out.println("subtask " + e.getSubtask() + "/" + e.getParallelism() + ": " + e.getStatus()
                                + (e.getModelVersion() == null ? "" : " model " + e.getModelVersion())
                                + (e.getReason() == null ? "" : ": " + e.getReason()));
                    }
                    expected = e.getParallelism();
                }
            }
        } catch (IOException e) {
            err.println("model: cannot read an answer: " + e.getMessage());
            return 1;
        }
        long refused = answers.values().stream().filter(e -> e.getStatus().equals("REFUSED")).count();
        String summary = String.format("{\"request_id\":\"%s\",\"action\":\"%s\",\"effective_at\":%d,"
                + "\"answers\":%d,\"subtasks\":%d,\"refused\":%d}", c.requestId(), ModelControl.name(c.action()),
                c.effectiveAt(), answers.size(), expected == Integer.MAX_VALUE ? 0 : expected, refused);
        if (answers.size() < expected || answers.isEmpty()) {
            err.println("model: " + answers.size() + " of " + (expected == Integer.MAX_VALUE ? "?" : expected)
                    + " scorer subtasks answered within " + v.get(TIMEOUT) + ": is the job running with "
                    + "--model-control-topic " + v.get(CONTROL_TOPIC) + " and --model-status-topic "
                    + v.get(STATUS_TOPIC) + ", and checkpointing (answers are committed with checkpoints)?");
            out.println(summary);
            return 4;
        }
        out.println(summary);
        return refused == 0 ? 0 : 3;
    }
}

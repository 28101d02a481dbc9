package dev.seqscore.tools.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.job.JobConfig;
import dev.seqscore.job.SeqScoreJob;
import dev.seqscore.kafka.EmbeddedKafka;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.offline.LocalFlink;
import dev.seqscore.offline.files.EventFileReader;
import dev.seqscore.offline.files.FileRecord;
import dev.seqscore.options.CommandLine;
import dev.seqscore.options.Option;
import dev.seqscore.options.OptionSet;
import dev.seqscore.options.OptionValues;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
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
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.flink.api.common.JobID;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * {@code bin/seqscore bench --bootstrap}: the warm-start bootstrap at scale. Remaps the Taobao sample's real users
 * into as many users as asked (each copy of a user gets a new id and the user's clicks of the last day before T), writes
 * them as one canonical CSV, runs {@code bin/seqscore bootstrap} on it in a child JVM (RocksDB) while sampling its
 * RSS, then starts the job from the savepoint on a local MiniCluster with an embedded broker and measures the time
 * from submission to every task RUNNING (state restored) and to the first score. Last line: JSON.
 */
public final class BootstrapBench {
    static final Option<Integer> USERS = Option.positiveInt("users", "1000000", "users to bootstrap at least");
    static final Option<Path> WORK_DIR = Option.path("work-dir", "", "where the history file and savepoint go; "
            + "empty = tools/target/bootstrap-bench-<time>");
    static final Option<String> HEAP = Option.string("heap", "2g", "the bootstrap JVM's -Xmx");
    static final Option<Integer> BENCH_PARALLELISM = Option.positiveInt("bootstrap-parallelism", "2",
            "the bootstrap's parallelism");
    static final Option<Boolean> KEEP = Option.flag("keep", "keep the history file and the savepoint");
    static final Option<Boolean> JFR = Option.flag("jfr",
            "record a JFR CPU profile of the bootstrap JVM into the work directory (bootstrap.jfr)");
    static final OptionSet OPTIONS = new OptionSet().add(USERS, WORK_DIR, HEAP, BENCH_PARALLELISM, KEEP, JFR,
            OptionSet.HELP);

    /** 2017-12-02T00:00:00+08:00: the sample's first 7 days end here. */
    static final long T = 1512144000000L;
    static final long DAY = 86_400_000L;
    static final long ID_STEP = 10_000_000L;

    private BootstrapBench() {}

    public static void main(String[] args) throws Exception {
        OptionValues o = new CommandLine(OPTIONS, OPTIONS.usage("bin/seqscore bench --bootstrap [--users N]",
                "The warm-start bootstrap at scale: remapped real users, RocksDB; events/s, savepoint bytes per "
                        + "user, peak memory, the job's start-up from the savepoint.")).parseOrExit(args);
        if (o == null) {
            return;
        }
        Path data = Path.of(System.getenv().getOrDefault("SEQSCORE_DATA_DIR", "../shared/data"), "taobao");
        Path work = o.get(WORK_DIR) != null ? o.get(WORK_DIR)
                : Path.of("tools/target/bootstrap-bench-" + Instant.now().getEpochSecond());
        Files.createDirectories(work);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("load_1m_at_start", load());

        // 1. History: each active user's clicks of the day before T, copied with new ids.
        Map<String, List<ClickEvent>> byUser = new TreeMap<>();
        for (String f : List.of("UserBehavior_sample.csv", "UserBehavior_extra_95users.csv")) {
            try (Stream<FileRecord> rows = EventFileReader.lines(data.resolve(f), EventFileReader.Format.TAOBAO)) {
                rows.filter(FileRecord::isValid).map(FileRecord::event)
                        .filter(e -> e.getEventTime().toEpochMilli() >= T - DAY && e.getEventTime().toEpochMilli() < T)
                        .forEach(e -> byUser.computeIfAbsent(e.getUserId(), k -> new ArrayList<>()).add(e));
            }
        }
        int copies = (int) Math.ceil((double) o.get(USERS) / byUser.size());
        Path history = work.resolve("history.csv");
        long events = 0;
        long started = System.nanoTime();
        try (BufferedWriter w = Files.newBufferedWriter(history, StandardCharsets.UTF_8)) {
            w.write("user_id,item_id,category_id,event_type,event_time\n");
            for (int c = 0; c < copies; c++) {
                for (Map.Entry<String, List<ClickEvent>> u : byUser.entrySet()) {
                    String id = Long.toString(Long.parseLong(u.getKey()) + ID_STEP * (c + 1));
                    for (ClickEvent e : u.getValue()) {
                        w.write(id);
                        w.write(',');
                        w.write(e.getItemId());
                        w.write(',');
                        w.write(e.getCategoryId());
                        w.write(',');
                        w.write(e.getEventType());
                        w.write(',');
                        w.write(Long.toString(e.getEventTime().toEpochMilli()));
                        w.write('\n');
                        events++;
                    }
                }
            }
        }
        long users = (long) copies * byUser.size();
        out.put("users_written", users);
        out.put("history_events", events);
        out.put("history_file_bytes", Files.size(history));
        System.err.printf(Locale.ROOT, "bench: %,d users (%d active real users x %d copies), %,d events, %s written "
                + "in %.1f s%n", users, byUser.size(), copies, events, history, (System.nanoTime() - started) / 1e9);

        // 2. The bootstrap, in a child JVM whose RSS and heap are measured.
        Path savepoint = work.resolve("savepoint");
        Path gcLog = work.resolve("bootstrap-gc.log");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx" + o.get(HEAP), "-Xss4m", "-Xlog:gc:file=" + gcLog,
                "--add-opens=java.base/java.lang=ALL-UNNAMED", "--add-opens=java.base/java.util=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), "dev.seqscore.offline.Bootstrap",
                "--input", history.toString(), "--format", "canonical", "--until", Long.toString(T),
                "--savepoint", savepoint.toString(), "--state-backend", "rocksdb",
                "--parallelism", Integer.toString(o.get(BENCH_PARALLELISM))));
        if (o.get(JFR)) {
            cmd.add(1, "-XX:StartFlightRecording=filename=" + work.resolve("bootstrap.jfr") + ",settings=profile");
        }
        System.err.println("bench: " + String.join(" ", cmd.subList(cmd.indexOf("dev.seqscore.offline.Bootstrap"),
                cmd.size())));
        Process p = new ProcessBuilder(cmd).redirectError(work.resolve("bootstrap.log").toFile()).start();
        long bootStarted = System.nanoTime();
        long peakRssKb = 0;
        List<String> stdout = new ArrayList<>();
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            Thread reader = new Thread(() -> r.lines().forEach(stdout::add));
            reader.start();
            while (p.isAlive()) {
                peakRssKb = Math.max(peakRssKb, statusKb(p.pid(), "VmHWM"));
                Thread.sleep(250);
            }
            reader.join();
        }
        double bootSeconds = (System.nanoTime() - bootStarted) / 1e9;
        if (p.exitValue() != 0) {
            throw new IllegalStateException("the bootstrap failed (" + p.exitValue() + "): see "
                    + work.resolve("bootstrap.log") + "\n" + String.join("\n", stdout));
        }
        JsonNode boot = new ObjectMapper().readTree(stdout.get(stdout.size() - 1));
        long savepointBytes;
        try (Stream<Path> files = Files.walk(savepoint)) {
            savepointBytes = files.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
        }
        out.put("bootstrap_users", boot.get("users").asLong());
        out.put("bootstrap_events", boot.get("events").asLong());
        out.put("bootstrap_wall_s", round(bootSeconds));
        out.put("bootstrap_job_s", boot.get("seconds").asDouble());
        out.put("history_events_per_s_wall", Math.round(boot.get("events").asLong() / bootSeconds));
        out.put("savepoint_bytes", savepointBytes);
        out.put("savepoint_bytes_per_user", round((double) savepointBytes / boot.get("users").asLong()));
        out.put("value_bytes_per_user", boot.get("value_bytes_per_user").asLong());
        out.put("bootstrap_peak_rss_mb", peakRssKb / 1024);
        out.put("bootstrap_peak_heap_mb", peakHeapMb(gcLog));
        out.put("bootstrap_xmx", o.get(HEAP));
        out.put("load_1m_after_bootstrap", load());

        // 3. The job from the savepoint: submission to RUNNING (restored) and to the first score.
        out.putAll(startUp(savepoint, work));
        out.put("load_1m_at_end", load());
        if (!o.get(KEEP)) {
            deleteTree(history);
            deleteTree(savepoint);
        }
        out.forEach((k, v) -> System.err.println("  " + k + ": " + v));
        System.out.println(new ObjectMapper().writeValueAsString(out));
        System.exit(0);
    }

    private static Map<String, Object> startUp(Path savepoint, Path work) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        try (EmbeddedKafka kafka = EmbeddedKafka.start();
                LocalFlink flink = LocalFlink.start(2)) {
            kafka.createTopics(2, "clicks", "alerts", "scores", "dlq");
            JobConfig config = JobConfig.parse("--bootstrap-servers", kafka.bootstrapServers(), "--input-topic",
                    "clicks", "--alerts-topic", "alerts", "--scores-topic", "scores", "--dead-letter-topic", "dlq",
                    "--starting-offsets", "timestamp:" + T, "--delivery", "at-least-once", "--state-backend",
                    "rocksdb", "--checkpoint-dir", work.resolve("checkpoints").toUri().toString(),
                    "--parallelism", "2", "--checkpoint-interval", "10s");
            produceLive(kafka.bootstrapServers());
            ModelBundle bundle = SeqScoreJob.loadModel(config);
            StreamExecutionEnvironment env = flink.environment();
            SeqScoreJob.assemble(env, config, bundle);
            long submitted = System.nanoTime();
            JobID job = flink.submit(env, "SeqScore from a bootstrapped savepoint", savepoint.toString());
            out.put("job_submit_s", round((System.nanoTime() - submitted) / 1e9));
            HttpClient http = HttpClient.newHttpClient();
            URI vertices = flink.restAddress().resolve("/jobs/" + job);
            long deadline = System.nanoTime() + Duration.ofMinutes(10).toNanos();
            while (true) {
                String body = http.send(HttpRequest.newBuilder(vertices).build(),
                        HttpResponse.BodyHandlers.ofString()).body();
                JsonNode j = new ObjectMapper().readTree(body);
                boolean all = j.has("vertices") && j.get("vertices").size() > 0;
                for (JsonNode v : j.path("vertices")) {
                    all &= v.path("tasks").path("RUNNING").asInt() == v.path("parallelism").asInt();
                }
                if (all) {
                    break;
                }
                if (System.nanoTime() > deadline || "FAILED".equals(j.path("state").asText())) {
                    throw new IllegalStateException("the job did not come up: " + body);
                }
                Thread.sleep(100);
            }
            out.put("job_running_s", round((System.nanoTime() - submitted) / 1e9));
            Properties c = new Properties();
            c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
            c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
            c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
            c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            c.put(ConsumerConfig.GROUP_ID_CONFIG, "bench-" + System.nanoTime());
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c)) {
                consumer.subscribe(List.of("scores"));
                while (true) {
                    ConsumerRecords<byte[], byte[]> r = consumer.poll(Duration.ofMillis(100));
                    if (!r.isEmpty()) {
                        break;
                    }
                    if (System.nanoTime() > deadline) {
                        throw new IllegalStateException("no score within 10 minutes");
                    }
                }
            }
            out.put("job_first_score_s", round((System.nanoTime() - submitted) / 1e9));
            flink.cancel(job);
        }
        return out;
    }

    /** A few clicks after T of bootstrapped users, and one much later per partition to move the watermark. */
    private static void produceLive(String bootstrap) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (int i = 0; i < 100; i++) {
                long t = T + 1000L * i;
                String user = Long.toString(1 + ID_STEP * (i + 1));
                for (int part = 0; part < 2; part++) {
                    ClickEvent e = ClickEvent.newBuilder().setUserId(user + "-" + part).setItemId("i" + i)
                            .setCategoryId("c").setEventType("view").setEventTime(Instant.ofEpochMilli(t)).build();
                    producer.send(new ProducerRecord<>("clicks", part, t, e.getUserId().getBytes(
                            StandardCharsets.UTF_8), ClickEventAvro.encode(e)));
                }
            }
            for (int part = 0; part < 2; part++) {
                long t = T + 3_600_000L;
                ClickEvent e = ClickEvent.newBuilder().setUserId("flush-" + part).setItemId("i").setCategoryId("c")
                        .setEventType("view").setEventTime(Instant.ofEpochMilli(t)).build();
                producer.send(new ProducerRecord<>("clicks", part, t, e.getUserId().getBytes(StandardCharsets.UTF_8),
                        ClickEventAvro.encode(e)));
            }
        }
    }

    private static long statusKb(long pid, String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                if (line.startsWith(field + ":")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            }
        } catch (IOException | RuntimeException e) {
            // The process has just ended.
        }
        return 0;
    }

    /** The largest heap occupancy before a collection, from -Xlog:gc lines like "Pause Young ... 512M->80M(1024M)". */
    static long peakHeapMb(Path gcLog) throws IOException {
        Pattern p = Pattern.compile("(\\d+)M->(\\d+)M\\((\\d+)M\\)");
        long peak = 0;
        for (String line : Files.readAllLines(gcLog)) {
            Matcher m = p.matcher(line);
            while (m.find()) {
                peak = Math.max(peak, Long.parseLong(m.group(1)));
            }
        }
        return peak;
    }

    static String load() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
        } catch (IOException e) {
            return "?";
        }
    }

    private static double round(double v) {
        return Math.round(v * 10) / 10.0;
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> s = Files.walk(p)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
    }
}

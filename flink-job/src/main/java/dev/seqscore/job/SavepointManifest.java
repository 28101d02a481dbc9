package dev.seqscore.job;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.Optional;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.Path;

/**
 * What a warm-start bootstrap wrote a savepoint for, in {@value #FILE} beside its {@code _metadata}: the model, the
 * window rule, the max parallelism, the cut-off time T and what it read. The job checks it before submission when it
 * starts from that savepoint ({@link SavepointCheck}); {@code bin/seqscore state} prints it.
 *
 * @param untilMs        T: the history is what came before it (events by event time for a file, records by Kafka
 *                       timestamp for a topic); the job reads Kafka from T on
 * @param modelVersion   the served model's version (its tag is in every value's header)
 * @param scoring        incremental or windowed
 * @param stateTtlMs     the processing-time TTL the values were written with (0: none); it runs from the bootstrap
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record SavepointManifest(
        @JsonProperty("format") int format,
        @JsonProperty("written_at") String writtenAt,
        @JsonProperty("model_version") String modelVersion,
        @JsonProperty("scoring") String scoring,
        @JsonProperty("max_events") int maxEvents,
        @JsonProperty("horizon_ms") long horizonMs,
        @JsonProperty("max_parallelism") int maxParallelism,
        @JsonProperty("until_ms") long untilMs,
        @JsonProperty("until") String until,
        @JsonProperty("source") String source,
        @JsonProperty("events") long events,
        @JsonProperty("users") long users,
        @JsonProperty("state_backend") String stateBackend,
        @JsonProperty("state_ttl_ms") long stateTtlMs) {

    public static final String FILE = "seqscore-bootstrap.json";
    public static final int FORMAT = 1;

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public void write(String savepointDir) throws IOException {
        Path file = new Path(savepointDir, FILE);
        try (OutputStream out = file.getFileSystem().create(file, FileSystem.WriteMode.NO_OVERWRITE)) {
            out.write(JSON.writeValueAsBytes(this));
        }
    }

    /** The manifest in a savepoint directory (a path or URI), or empty when there is none (a savepoint of the job). */
    public static Optional<SavepointManifest> read(String savepointDir) throws IOException {
        Path file = new Path(savepointDir, FILE);
        FileSystem fs = file.getFileSystem();
        if (!fs.exists(file)) {
            return Optional.empty();
        }
        try (InputStream in = fs.open(file)) {
            return Optional.of(JSON.readValue(in, SavepointManifest.class));
        }
    }

    public String toJson() {
        try {
            return new ObjectMapper().writeValueAsString(this);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}

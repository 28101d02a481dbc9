package dev.seqscore.tools.demo;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * What Flink's REST API says about one job at one moment: its state, restarts, checkpoints, back-pressure per
 * vertex and its latest failure. {@link #fetch} reads it; a job or API that does not answer gives {@link #error}.
 *
 * @param state e.g. RUNNING, RESTARTING, FAILED; null when unknown
 * @param restarts restarts since the job was submitted (the larger of Flink's {@code numRestarts} and the highest
 *     subtask attempt number); -1 when unknown
 * @param refusedTriggers failed checkpoints that never started because not all tasks were running yet (Flink counts
 *     them as failed; they happen while a job starts or restarts); -1 once the history is too long to tell
 * @param lastCompleted null until a checkpoint completes
 * @param lastCheckpointFailure the latest failed checkpoint's message, or null
 * @param checkpointSizes largest state size and checkpointed (uploaded) size over all completed checkpoints
 * @param vertices one entry per job vertex, in graph order
 * @param latestFailure the newest entry of the job's exception history, or null
 * @param error why the API could not be read, or null
 */
public record JobHealth(
        Instant observedAt,
        String state,
        long restarts,
        int completedCheckpoints,
        int failedCheckpoints,
        int inProgressCheckpoints,
        int refusedTriggers,
        Checkpoint lastCompleted,
        String lastCheckpointFailure,
        Extremes checkpointSizes,
        Extremes checkpointDurations,
        List<VertexLoad> vertices,
        Failure latestFailure,
        String error) {

    /** A completed checkpoint: full state size, what it uploaded (less with incremental RocksDB) and its duration. */
    public record Checkpoint(long id, Instant completedAt, long stateSize, long checkpointedSize, long durationMs) {}

    /** Largest values over all completed checkpoints (the REST summary's max; the average alongside). */
    public record Extremes(long max, long avg, long maxCheckpointed) {
        static final Extremes NONE = new Extremes(0, 0, 0);
    }

    /**
     * One vertex's load: Flink's back-pressure level (ok, low, high) and the largest ratios over its subtasks of time
     * spent back-pressured and busy. A back-pressured vertex waits for a busy one downstream.
     */
    public record VertexLoad(String name, String level, double backPressuredRatio, double busyRatio) {
        public boolean backPressured() {
            return "high".equals(level) || "low".equals(level);
        }
    }

    /** A failure of the job: when, in which task, and the first line of its root cause. */
    public record Failure(Instant at, String task, String rootCause) {}

    static JobHealth unreachable(Instant at, String error) {
        return new JobHealth(at, null, -1, 0, 0, 0, -1, null, null, Extremes.NONE, Extremes.NONE, List.of(), null,
                error);
    }

    public boolean running() {
        return "RUNNING".equals(state);
    }

    /** Reads everything from the REST API; never throws: an API that does not answer is reported as such. */
    static JobHealth fetch(FlinkRest rest, String jobId) {
        Instant now = Instant.now();
        try {
            JsonNode job = rest.get("jobs/" + jobId);
            JsonNode checkpoints = rest.get("jobs/" + jobId + "/checkpoints");
            JsonNode counts = checkpoints.path("counts");
            JsonNode latest = checkpoints.path("latest");
            JsonNode completed = latest.path("completed");
            Checkpoint last = completed.isObject()
                    ? new Checkpoint(completed.path("id").asLong(),
                            Instant.ofEpochMilli(completed.path("latest_ack_timestamp").asLong()),
                            completed.path("state_size").asLong(), completed.path("checkpointed_size").asLong(),
                            completed.path("end_to_end_duration").asLong())
                    : null;
            JsonNode lastFailed = latest.path("failed");
            String checkpointFailure = lastFailed.isObject() ? textOrNull(lastFailed.path("failure_message")) : null;
            JsonNode summary = checkpoints.path("summary");
            Extremes sizes = new Extremes(summary.path("state_size").path("max").asLong(),
                    summary.path("state_size").path("avg").asLong(),
                    summary.path("checkpointed_size").path("max").asLong());
            Extremes durations = new Extremes(summary.path("end_to_end_duration").path("max").asLong(),
                    summary.path("end_to_end_duration").path("avg").asLong(), 0);

            List<VertexLoad> vertices = new ArrayList<>();
            int maxAttempt = 0;
            for (JsonNode v : job.path("vertices")) {
                vertices.add(load(rest, jobId, v));
                maxAttempt = Math.max(maxAttempt, maxAttempt(rest, jobId, v));
            }
            int failed = counts.path("failed").asInt();
            return new JobHealth(now, job.path("state").asText(), Math.max(restarts(rest, jobId), maxAttempt),
                    counts.path("completed").asInt(), failed, counts.path("in_progress").asInt(),
                    refusedTriggers(failed, checkpoints.path("history")), last, checkpointFailure, sizes, durations,
                    vertices, latestFailure(rest, jobId), null);
        } catch (IOException | RuntimeException e) {
            return unreachable(now, e.getMessage() == null ? e.toString() : e.getMessage());
        }
    }

    /**
     * A checkpoint that fails before it starts (its trigger finds a task not yet running) gets no id and no history
     * entry, but counts as failed. While the history still reaches back to checkpoint 1, the difference is exact.
     */
    static int refusedTriggers(int failed, JsonNode history) {
        long oldest = Long.MAX_VALUE;
        int failedWithId = 0;
        for (JsonNode c : history) {
            oldest = Math.min(oldest, c.path("id").asLong());
            if ("FAILED".equals(c.path("status").asText())) {
                failedWithId++;
            }
        }
        return history.isEmpty() || oldest == 1 ? Math.max(0, failed - failedWithId) : -1;
    }

    /**
     * The highest execution attempt among a vertex's subtasks: every restart of a subtask deploys a new attempt. A
     * second source of the restart count, because the {@code numRestarts} metric comes through the REST API's metric
     * fetcher, which another drill here saw go stale (stuck at 0) after a TaskManager was killed.
     */
    private static int maxAttempt(FlinkRest rest, String jobId, JsonNode vertex) {
        int max = 0;
        try {
            for (JsonNode s : rest.get("jobs/" + jobId + "/vertices/" + vertex.path("id").asText()).path("subtasks")) {
                max = Math.max(max, s.path("attempt").asInt(0));
            }
        } catch (IOException e) {
            // The vertex is being redeployed: the metric and the other vertices still count.
        }
        return max;
    }

    private static long restarts(FlinkRest rest, String jobId) throws IOException {
        for (JsonNode m : rest.get("jobs/" + jobId + "/metrics?get=numRestarts")) {
            return m.path("value").asLong(-1);
        }
        return -1; // not registered yet: the job is still being created
    }

    private static VertexLoad load(FlinkRest rest, String jobId, JsonNode vertex) {
        String name = vertex.path("name").asText();
        try {
            JsonNode bp = rest.get("jobs/" + jobId + "/vertices/" + vertex.path("id").asText() + "/backpressure");
            if (!"ok".equals(bp.path("status").asText())) {
                return new VertexLoad(name, "unknown", 0, 0); // no samples yet
            }
            double ratio = 0;
            double busy = 0;
            for (JsonNode s : bp.path("subtasks")) {
                ratio = Math.max(ratio, s.path("ratio").asDouble());
                busy = Math.max(busy, s.path("busyRatio").asDouble());
            }
            return new VertexLoad(name, bp.path("backpressureLevel").asText("unknown"), ratio, busy);
        } catch (IOException e) {
            return new VertexLoad(name, "unknown", 0, 0); // e.g. the vertex is being redeployed
        }
    }

    private static Failure latestFailure(FlinkRest rest, String jobId) throws IOException {
        JsonNode newest = null;
        for (JsonNode e : rest.get("jobs/" + jobId + "/exceptions?maxExceptions=10").path("exceptionHistory")
                .path("entries")) {
            if (newest == null || e.path("timestamp").asLong() > newest.path("timestamp").asLong()) {
                newest = e;
            }
        }
        if (newest == null) {
            return null;
        }
        String task = textOrNull(newest.path("taskName"));
        return new Failure(Instant.ofEpochMilli(newest.path("timestamp").asLong()), task,
                rootCause(newest.path("stacktrace").asText(newest.path("exceptionName").asText())));
    }

    /**
     * The first line of the innermost cause of a Java stack trace: what actually went wrong, rather than the
     * wrappers Flink adds around it.
     */
    static String rootCause(String stackTrace) {
        String[] lines = stackTrace.split("\\R");
        String cause = lines.length == 0 ? "" : lines[0].trim();
        for (String line : lines) {
            // Only the main chain: suppressed exceptions and their causes are indented.
            if (line.startsWith("Caused by: ")) {
                cause = line.substring("Caused by: ".length()).trim();
            }
        }
        return cause;
    }

    private static String textOrNull(JsonNode n) {
        return n.isMissingNode() || n.isNull() || n.asText().isBlank() ? null : n.asText();
    }
}

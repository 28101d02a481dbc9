package dev.seqscore.tools.demo;

import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;

/**
 * The demo's account of the job, read from Flink's REST API: a health block per report (state, restarts, the last
 * checkpoint's age and size, failed checkpoints, back-pressure), the first line of the root cause of every failure it
 * has not shown yet, and why no output was committed when none was. It reports what the API says and guesses nothing.
 */
public final class JobHealthReporter {
    private final FlinkRest rest;
    private final String jobId;
    private Instant failureShown = Instant.EPOCH;
    private int refusedTriggers;

    public JobHealthReporter(URI restBase, String jobId) {
        this.rest = new FlinkRest(restBase);
        this.jobId = jobId;
    }

    /** Asks the REST API now; never throws. */
    public JobHealth poll() {
        return JobHealth.fetch(rest, jobId);
    }

    /** The health block: a job line, a load line and, once per failure, its root cause. */
    public String render(JobHealth h) {
        if (h.error() != null) {
            return "  job:    state unknown: Flink's REST API at " + rest.base() + " did not answer (" + h.error() + ")\n";
        }
        StringBuilder sb = new StringBuilder();
        sb.append("  job:    ").append(h.state()).append(", ")
                .append(h.restarts() < 0 ? "restarts unknown" : plural(h.restarts(), "restart")).append("; checkpoints: ")
                .append(h.completedCheckpoints()).append(" completed, ").append(failed(h));
        if (h.inProgressCheckpoints() > 0) {
            sb.append(", ").append(h.inProgressCheckpoints()).append(" in progress");
        }
        JobHealth.Checkpoint last = h.lastCompleted();
        if (last != null) {
            sb.append("; last #").append(last.id()).append(' ').append(age(last.completedAt(), h.observedAt()))
                    .append(" ago, ").append(bytes(last.stateSize()));
            if (last.checkpointedSize() != last.stateSize()) {
                sb.append(" (").append(bytes(last.checkpointedSize())).append(" uploaded)");
            }
            sb.append(" in ").append(millis(last.durationMs()));
        }
        sb.append('\n');
        if (h.failedCheckpoints() > 0 && h.lastCheckpointFailure() != null) {
            sb.append("          last failed checkpoint: ").append(firstLine(h.lastCheckpointFailure())).append('\n');
        }
        sb.append("  load:   ").append(load(h.vertices())).append('\n');
        JobHealth.Failure f = h.latestFailure();
        if (f != null && f.at().isAfter(failureShown)) {
            failureShown = f.at();
            sb.append("  ").append(h.running() ? "RESTARTED" : "FAILURE").append(" at ").append(f.at())
                    .append(f.task() == null ? "" : " in " + shortName(f.task())).append(": ").append(f.rootCause())
                    .append('\n');
        }
        return sb.toString();
    }

    /** Failed checkpoints, telling apart those refused at start-up (remembered once the history no longer shows). */
    private String failed(JobHealth h) {
        if (h.refusedTriggers() >= 0) {
            refusedTriggers = h.refusedTriggers();
        }
        return h.failedCheckpoints() + " failed" + (refusedTriggers > 0 ? " (" + refusedTriggers
                + " of them never started: not all tasks were running yet)" : "");
    }

    /**
     * Why a report saw no new committed output, from the job's health: the one thing a {@code 0/s} must never hide.
     *
     * @param newInput clicks sent since the previous report
     * @param window the time since the previous report
     */
    public static String whyNoNewOutput(JobHealth h, long newInput, Duration window) {
        if (h.error() != null) {
            return "job state unknown, Flink's REST API did not answer";
        }
        if (!h.running()) {
            JobHealth.Failure f = h.latestFailure();
            return "job is " + h.state() + (f == null ? "" : " after " + f.rootCause());
        }
        JobHealth.Checkpoint last = h.lastCompleted();
        if (last == null) {
            return "no checkpoint has completed yet, and exactly-once output becomes visible only at checkpoints"
                    + (h.failedCheckpoints() > 0 ? " (" + plural(h.failedCheckpoints(), "failed checkpoint") + ")" : "");
        }
        Duration age = Duration.between(last.completedAt(), h.observedAt());
        if (age.compareTo(window) > 0) {
            return "no checkpoint completed in the last " + age(last.completedAt(), h.observedAt())
                    + ", and output is committed only at checkpoints"
                    + (h.failedCheckpoints() > 0 ? " (" + plural(h.failedCheckpoints(), "failed checkpoint") + ")"
                            : h.inProgressCheckpoints() > 0 ? " (one is in progress)" : "");
        }
        if (newInput == 0) {
            return "no new input";
        }
        return "checkpoint #" + last.id() + " completed " + age(last.completedAt(), h.observedAt())
                + " ago, but no new scores are visible yet: the sinks commit just after each checkpoint, and events "
                + "wait until the watermark passes them (--max-out-of-orderness); " + load(h.vertices());
    }

    /** The closing line of a run: what an operator checks first after a soak. */
    public String verdict(JobHealth h, int reports, int reportsWithNewOutput, Duration longestWithoutOutput) {
        if (h.error() != null) {
            return "job state unknown at the end: " + h.error();
        }
        return String.format(Locale.ROOT, "job %s, %s, %d checkpoints completed, %s; largest checkpoint %s "
                        + "(largest upload %s), longest %s, mean %s; new committed output in %d of %d reports, "
                        + "at most %d s without",
                h.state(), plural(h.restarts(), "restart"), h.completedCheckpoints(), failed(h),
                bytes(h.checkpointSizes().max()), bytes(h.checkpointSizes().maxCheckpointed()),
                millis(h.checkpointDurations().max()), millis(h.checkpointDurations().avg()), reportsWithNewOutput,
                reports, longestWithoutOutput.toSeconds());
    }

    private static String load(List<JobHealth.VertexLoad> vertices) {
        if (vertices.isEmpty() || vertices.stream().allMatch(v -> v.level().equals("unknown"))) {
            return "back-pressure not sampled yet";
        }
        List<JobHealth.VertexLoad> pressed = vertices.stream().filter(JobHealth.VertexLoad::backPressured).toList();
        JobHealth.VertexLoad busiest = vertices.stream()
                .max(Comparator.comparingDouble(JobHealth.VertexLoad::busyRatio)).orElseThrow();
        StringBuilder sb = new StringBuilder();
        if (pressed.isEmpty()) {
            sb.append("no back-pressure");
        } else {
            sb.append("back-pressured: ");
            for (int i = 0; i < pressed.size(); i++) {
                JobHealth.VertexLoad v = pressed.get(i);
                sb.append(i == 0 ? "" : ", ").append(shortName(v.name())).append(" (").append(v.level()).append(", ")
                        .append(percent(v.backPressuredRatio())).append(" of the time)");
            }
        }
        return sb.append("; busiest: ").append(shortName(busiest.name())).append(" (")
                .append(percent(busiest.busyRatio())).append(" busy)").toString();
    }

    /** A chain's first operator: Flink names a chained vertex after all of its operators. */
    static String shortName(String vertex) {
        int arrow = vertex.indexOf(" -> ");
        return arrow < 0 ? vertex : vertex.substring(0, arrow) + " -> ...";
    }

    static String plural(long n, String word) {
        return n + " " + word + (n == 1 ? "" : "s");
    }

    static String bytes(long n) {
        if (n < 1024) {
            return n + " B";
        }
        if (n < 1024 * 1024) {
            return String.format(Locale.ROOT, "%.1f KiB", n / 1024.0);
        }
        if (n < 1024L * 1024 * 1024) {
            return String.format(Locale.ROOT, "%.1f MiB", n / (1024.0 * 1024));
        }
        return String.format(Locale.ROOT, "%.2f GiB", n / (1024.0 * 1024 * 1024));
    }

    static String millis(long ms) {
        return ms < 1000 ? ms + " ms" : String.format(Locale.ROOT, "%.1f s", ms / 1000.0);
    }

    static String age(Instant then, Instant now) {
        long s = Math.max(0, Duration.between(then, now).toSeconds());
        return s < 120 ? s + " s" : s < 7200 ? s / 60 + " min" : s / 3600 + " h";
    }

    private static String percent(double ratio) {
        return Math.round(ratio * 100) + "%";
    }

    private static String firstLine(String s) {
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}

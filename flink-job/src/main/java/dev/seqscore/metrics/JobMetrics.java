package dev.seqscore.metrics;

import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.metrics.DescriptiveStatisticsHistogram;

/**
 * The job's own metrics, registered through Flink's metric system: their names and label keys in one place, so that
 * the operators, the tests, the README's table and the Grafana dashboard (whose queries a test runs against a real
 * Prometheus) agree.
 *
 * <p>A label is a Flink key/value group: {@code group.addGroup(key, value)} becomes the Prometheus label
 * {@code key="value"}, and the key also joins the exported name (Flink puts a key group in the logical scope).
 */
public final class JobMetrics {
    /** Validate: every input record, valid or not. */
    public static final String EVENTS_RECEIVED = "eventsReceived";
    /** Scorer: events scored by the model. */
    public static final String EVENTS_SCORED = "eventsScored";
    /** Scorer: events at or behind the watermark (also counted as dead letters with reason LATE_EVENT). */
    public static final String LATE_EVENTS = "lateEvents";
    /** Scorer: exact duplicates dropped. */
    public static final String DUPLICATE_EVENTS = "duplicateEvents";
    /** Validate and scorer: records sent to the dead-letter output, labelled {@link #REASON}. */
    public static final String DEAD_LETTERS = "deadLetters";
    public static final String REASON = "reason";
    /** Alert operator: alerts emitted, labelled {@link #ALERT_TYPE}. */
    public static final String ALERTS_EMITTED = "alertsEmitted";
    public static final String ALERT_TYPE = "alert_type";
    /** Scorer: wall time of one ONNX Runtime call, in microseconds. */
    public static final String INFERENCE_CALL_MICROS = "inferenceCallMicros";
    /** Scorer: a call's wall time divided by its rows, in microseconds; one sample per call. */
    public static final String INFERENCE_EVENT_MICROS = "inferenceEventMicros";
    /** Scorer: rows per ONNX Runtime call. */
    public static final String BATCH_SIZE = "batchSize";
    /** Scorer: wall clock minus event time when a score is emitted, in milliseconds. */
    public static final String EVENT_TIME_LAG_MS = "eventTimeLagMs";
    /** Scorer: events in the window the model saw. */
    public static final String WINDOW_LENGTH = "windowLength";
    /** Scorer: events whose score reached an alert threshold and got reasons. */
    public static final String EVENTS_EXPLAINED = "eventsExplained";
    /** Scorer: wall time of one reasons call (every occlusion of every explained row of a batch), in microseconds. */
    public static final String EXPLAIN_CALL_MICROS = "explainCallMicros";
    /** Scorer: a gauge of 1 labelled with the model's version, to join or display. */
    public static final String MODEL_INFO = "modelInfo";
    public static final String MODEL_VERSION = "model_version";
    /** Scorer: users with a window on this subtask (approximate, see {@link LiveUsers}). */
    public static final String USERS_WITH_STATE = "usersWithState";
    /** Users whose stored model state another model version wrote, so the step started it again from zeros. */
    public static final String MODEL_STATE_RESTARTS = "modelStateRestarts";
    /** Erasure requests answered (with state found or not). */
    public static final String USER_ERASURES = "userErasures";

    /** Scorer: times the serving model changed (a scheduled swap or promotion took effect); the dashboard marks them. */
    public static final String MODEL_SWAPS = "modelSwaps";
    /** Scorer: model control records scheduled. */
    public static final String MODEL_CONTROL_ACCEPTED = "modelControlAccepted";
    /** Scorer: model control records refused (a bad bundle, a late effective time, an unreadable record). */
    public static final String MODEL_CONTROL_REFUSED = "modelControlRefused";
    /** Scorer: a gauge of 1 labelled with the shadow candidate's version while one shadows, else 0. */
    public static final String SHADOW_MODEL_INFO = "shadowModelInfo";
    public static final String SHADOW_MODEL_VERSION = "shadow_model_version";
    public static final String OUTPUT = "output";
    /** Scorer: events the shadow candidate scored beside the serving model. */
    public static final String SHADOW_EVENTS_SCORED = "shadowEventsScored";
    /** Scorer: wall time of the candidate's model call per batch, in microseconds: the cost of shadowing. */
    public static final String SHADOW_CALL_MICROS = "shadowCallMicros";
    /** Per output: shadowed events whose candidate score reached the candidate's threshold. */
    public static final String SHADOW_ABOVE_THRESHOLD = "shadowAboveThreshold";
    /** Per output: the same events whose serving score reached the serving threshold. */
    public static final String SHADOW_SERVING_ABOVE_THRESHOLD = "shadowServingAboveThreshold";
    /** Per output: shadowed events where exactly one of the two models reached its threshold. */
    public static final String SHADOW_DISAGREEMENTS = "shadowDisagreements";
    /** Per output: the share of shadowed events the two disagree about alerting, since the candidate started. */
    public static final String SHADOW_DISAGREEMENT_SHARE = "shadowDisagreementShare";
    /** Per output: mean |candidate score - serving score| since the candidate started. */
    public static final String SHADOW_MEAN_ABS_DIFF = "shadowMeanAbsDiff";
    /** Per output: share of shadowed events at or above the threshold, candidate and serving model. */
    public static final String SHADOW_ALERT_RATE = "shadowAlertRate";
    public static final String SHADOW_SERVING_ALERT_RATE = "shadowServingAlertRate";
    /** Per output: scores in parts per million, candidate and serving model (for quantiles). */
    public static final String SHADOW_SCORE_PPM = "shadowScorePpm";
    public static final String SHADOW_SERVING_SCORE_PPM = "shadowServingScorePpm";

    /**
     * Samples per histogram and subtask. Quantiles are computed over the most recent samples when a reporter reads
     * them; 1024 leaves about ten samples above the 99th percentile.
     */
    public static final int HISTOGRAM_SAMPLES = 1024;

    private JobMetrics() {}

    /**
     * A histogram of the last {@link #HISTOGRAM_SAMPLES} values. Flink's own reservoir (it backs Flink's latency
     * and checkpoint statistics): an update writes into a preallocated ring, so recording allocates nothing.
     */
    public static Histogram histogram(MetricGroup group, String name) {
        return group.histogram(name, new DescriptiveStatisticsHistogram(HISTOGRAM_SAMPLES));
    }

    /** The dead-letter counter for one reason. */
    public static Counter deadLetters(MetricGroup group, String reason) {
        return group.addGroup(REASON, reason).counter(DEAD_LETTERS);
    }
}

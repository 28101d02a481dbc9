package dev.seqscore.e2e.drill;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.offline.Backtest;
import dev.seqscore.job.PipelineSettings;
import dev.seqscore.scoring.ScoredEvent;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * What the job must write for the drill's input, from the backtest of the same events: the same operators and model
 * on an in-process MiniCluster, fed in event-time order. A score is identified by (user, event time, event type,
 * item), an alert by its deterministic {@code alert_id}.
 *
 * @param scores      every expected score's output values, in the model's output order
 * @param alerts      every expected alert by id
 * @param deadLetters the backtest's dead letters (none for clean data)
 * @param versions    the model version that scored each expected score's event (with a model schedule, the one the
 *                    schedule assigns it; an alert carries its own in {@link Alert#getModelVersion()})
 */
public record Expected(Map<ScoreKey, double[]> scores, Map<String, Alert> alerts, List<DeadLetter> deadLetters,
        Map<ScoreKey, String> versions) {

    /** Identifies one scored event. */
    public record ScoreKey(String user, long eventTime, String eventType, String item) {}

    /**
     * Runs the backtest over the drill's rows (flush events included) and keeps what the live job will emit; with a
     * model schedule in {@code settings} ({@link PipelineSettings#modelSchedule}), it applies from the start, as the
     * job applied the same control records.
     */
    public static Expected of(DrillInput input, PipelineSettings settings) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(1);
        Backtest.Result r = Backtest.run(env, input.rows(), "drill", settings);
        Map<ScoreKey, double[]> scores = new LinkedHashMap<>();
        Map<ScoreKey, String> versions = new HashMap<>();
        for (ScoredEvent e : r.scores()) {
            if (DrillInput.isFlushUser(e.userId)) {
                continue;
            }
            double[] values = new double[e.scores.length];
            for (int i = 0; i < values.length; i++) {
                values[i] = e.scores[i];
            }
            ScoreKey key = new ScoreKey(e.userId, e.eventTime, e.eventType, e.itemId);
            if (scores.put(key, values) != null) {
                throw new IllegalStateException("the backtest scored one event twice: " + e);
            }
            versions.put(key, e.modelVersion);
        }
        Map<String, Alert> alerts = new HashMap<>();
        for (Alert a : r.alerts()) {
            if (!DrillInput.isFlushUser(a.getUserId()) && alerts.put(a.getAlertId(), a) != null) {
                throw new IllegalStateException("the backtest emitted alert " + a.getAlertId() + " twice");
            }
        }
        return new Expected(scores, alerts, r.deadLetters(), versions);
    }
}

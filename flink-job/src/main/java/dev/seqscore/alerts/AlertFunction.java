package dev.seqscore.alerts;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.AlertReason;
import dev.seqscore.reasons.Reason;
import dev.seqscore.metrics.JobMetrics;
import dev.seqscore.scoring.ScoredEvent;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.HashMap;
import java.util.Map;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;

/**
 * Turns scores into alerts: an output at or above its threshold raises its alert type for the user, unless the
 * same type fired for that user less than the cooldown ago (in event time, so replays decide the same way).
 *
 * <p>State per user: the event time of the last alert per type. An event-time timer clears it once the cooldown
 * has passed, so users who stop alerting leave no state behind.
 *
 * <p>Metric: {@link JobMetrics#ALERTS_EMITTED}, labelled by alert type.
 */
public class AlertFunction extends KeyedProcessFunction<String, ScoredEvent, Alert> {
    private static final long serialVersionUID = 1L;

    private final AlertPolicy policy;
    private final Duration stateTtl;

    private transient MapState<String, Long> lastAlert;
    private transient Map<String, Counter> alertsByType;

    public AlertFunction(AlertPolicy policy, Duration stateTtl) {
        this.policy = policy;
        this.stateTtl = stateTtl;
    }

    @Override
    public void open(OpenContext ctx) {
        MapStateDescriptor<String, Long> desc = new MapStateDescriptor<>("last-alert", Types.STRING, Types.LONG);
        if (!stateTtl.isZero()) {
            desc.enableTimeToLive(StateTtlConfig.newBuilder(stateTtl).build());
        }
        lastAlert = getRuntimeContext().getMapState(desc);
        alertsByType = new HashMap<>();
        for (AlertPolicy.Rule rule : policy.rules) {
            alertsByType.put(rule.alertType, getRuntimeContext().getMetricGroup()
                    .addGroup(JobMetrics.ALERT_TYPE, rule.alertType).counter(JobMetrics.ALERTS_EMITTED));
        }
    }

    @Override
    public void processElement(ScoredEvent s, Context ctx, Collector<Alert> out) throws Exception {
        Map<String, Double> scores = null;
        for (int o = 0; o < policy.rules.size(); o++) {
            AlertPolicy.Rule rule = policy.rules.get(o);
            double score = s.scores[o];
            if (!rule.crossedBy(score)) {
                continue;
            }
            Long last = lastAlert.get(rule.alertType);
            if (last != null && s.eventTime - last < policy.cooldownMs) {
                continue;
            }
            if (policy.cooldownMs > 0) {
                // Without a cooldown nothing is ever suppressed, so there is nothing to remember (nor to clean up).
                lastAlert.put(rule.alertType, s.eventTime);
                ctx.timerService().registerEventTimeTimer(s.eventTime + policy.cooldownMs);
            }
            if (scores == null) {
                scores = new HashMap<>();
                for (int i = 0; i < policy.rules.size(); i++) {
                    scores.put(policy.rules.get(i).output, (double) s.scores[i]);
                }
            }
            alertsByType.get(rule.alertType).inc();
            out.collect(Alert.newBuilder()
                    .setAlertId(AlertIds.of(s.userId, s.eventTime, s.eventType, s.itemId, rule.alertType))
                    .setUserId(s.userId)
                    .setAlertType(rule.alertType)
                    .setOutput(rule.output)
                    .setScore(score)
                    .setThreshold(rule.threshold)
                    .setScores(scores)
                    .setModelVersion(policy.modelVersion)
                    .setEventTime(Instant.ofEpochMilli(s.eventTime))
                    .setEventType(s.eventType)
                    .setItemId(s.itemId)
                    .setWindowLength(s.windowLength)
                    .setEmittedAt(Instant.ofEpochMilli(ctx.timerService().currentProcessingTime()))
                    .setReasons(reasonsFor(s, o))
                    .build());
        }
    }

    /** The scorer's reasons for output {@code o}, best first; empty when it gave none. */
    static List<AlertReason> reasonsFor(ScoredEvent s, int o) {
        if (s.reasons == null) {
            return List.of();
        }
        List<AlertReason> out = new ArrayList<>(3);
        for (Reason r : s.reasons) {
            if (r.output == o) {
                out.add(new AlertReason(r.group, r.text, (double) r.drop));
            }
        }
        return out;
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<Alert> out) throws Exception {
        // Only entries whose cooldown is over go; a newer alert keeps its own.
        var it = lastAlert.iterator();
        while (it.hasNext()) {
            if (it.next().getValue() + policy.cooldownMs <= timestamp) {
                it.remove();
            }
        }
        if (lastAlert.isEmpty()) {
            // The iterator's remove leaves an empty map behind on the heap backend; only clear() drops the entry.
            lastAlert.clear();
        }
    }
}

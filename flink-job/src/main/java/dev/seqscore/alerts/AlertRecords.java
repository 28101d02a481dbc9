package dev.seqscore.alerts;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.AlertReason;
import dev.seqscore.reasons.Reason;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Builds the Avro {@link Alert} for one output of one scored event that the policy lets through. */
public final class AlertRecords {
    private AlertRecords() {}

    /**
     * @param rule      index of the policy rule (and model output) that alerts
     * @param scores    every output's score, in the policy's rule order
     * @param reasons   the scorer's reasons for the event (any output), or null
     * @param emittedAt processing time, for the record
     */
    public static Alert of(AlertPolicy policy, int rule, String userId, long eventTime, String eventType,
            String itemId, int windowLength, float[] scores, Reason[] reasons, long emittedAt) {
        AlertPolicy.Rule r = policy.rules.get(rule);
        Map<String, Double> all = new HashMap<>();
        for (int i = 0; i < policy.rules.size(); i++) {
            all.put(policy.rules.get(i).output, (double) scores[i]);
        }
        return Alert.newBuilder()
                .setAlertId(AlertIds.of(userId, eventTime, eventType, itemId, r.alertType))
                .setUserId(userId)
                .setAlertType(r.alertType)
                .setOutput(r.output)
                .setScore(scores[rule])
                .setThreshold(r.threshold)
                .setScores(all)
                .setModelVersion(policy.modelVersion)
                .setEventTime(Instant.ofEpochMilli(eventTime))
                .setEventType(eventType)
                .setItemId(itemId)
                .setWindowLength(windowLength)
                .setEmittedAt(Instant.ofEpochMilli(emittedAt))
                .setReasons(reasonsFor(reasons, rule))
                .build();
    }

    /** The reasons for output {@code o}, best first; empty when there are none. */
    static List<AlertReason> reasonsFor(Reason[] reasons, int o) {
        if (reasons == null) {
            return List.of();
        }
        List<AlertReason> out = new ArrayList<>(3);
        for (Reason r : reasons) {
            if (r.output == o) {
                out.add(new AlertReason(r.group, r.text, (double) r.drop));
            }
        }
        return out;
    }
}

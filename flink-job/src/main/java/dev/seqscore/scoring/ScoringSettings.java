package dev.seqscore.scoring;

import dev.seqscore.alerts.AlertPolicy;
import dev.seqscore.alerts.AlertRules;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.features.Scoring;
import java.io.Serializable;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import dev.seqscore.lifecycle.ModelControl;

/**
 * What {@link ScoringOperator} needs, checked once on the client.
 *
 * @param scoring        which of the bundle's models scores: the streaming model's step or the windowed model
 * @param maxEvents      window length N; at most the model's N (shorter windows are padded)
 * @param horizonMs      window horizon H
 * @param stateTtl       processing-time TTL backstop on a user's state, for partitions whose watermark stalls; it is
 *                       never shorter than the event-time retention below; zero disables it
 * @param modelStateTtlMs how long, in event time, a user's lifetime record and model state outlive the user's last
 *                       event; 0 keeps them only as long as the window (and any running cooldown)
 * @param ortThreads     ONNX Runtime intra-op threads
 * @param maxBatch       rows per ONNX Runtime call at most; 1 scores every event on its own
 * @param maxDelayMs     how long a ready event may wait for its batch to fill, in processing time
 * @param alerts         thresholds and cooldown, per output of the served model
 * @param reasonTop      reasons per output of an alerting event; 0 for none
 * @param alertRules     how a model published to the running job gets its thresholds ({@code alerts} is what they
 *                       gave for {@code bundle})
 * @param bundleLocation where {@code bundle} was read (null: the job jar's)
 * @param shadowScores   whether the shadow candidate's scores go to {@link ScoringOperator#SHADOW_SCORES}
 * @param presetSchedule model changes scheduled from the start, as if read from the control topic before any click
 *                       (the backtest's {@code --model-swap}, and the drill's fault-free expectation)
 */
public record ScoringSettings(ModelBundle bundle, Scoring scoring, int maxEvents, long horizonMs, Duration stateTtl,
        long modelStateTtlMs, int ortThreads, int maxBatch, long maxDelayMs, AlertPolicy alerts, int reasonTop,
        AlertRules alertRules, String bundleLocation, boolean shadowScores, List<ModelControl> presetSchedule)
        implements Serializable {

    /** Settings whose thresholds stay as {@code alerts} sets them for any published model. */
    public ScoringSettings(ModelBundle bundle, Scoring scoring, int maxEvents, long horizonMs, Duration stateTtl,
            long modelStateTtlMs, int ortThreads, int maxBatch, long maxDelayMs, AlertPolicy alerts, int reasonTop) {
        this(bundle, scoring, maxEvents, horizonMs, stateTtl, modelStateTtlMs, ortThreads, maxBatch, maxDelayMs, alerts,
                reasonTop, AlertRules.fixed(alerts), null, false, List.of());
    }

    public ScoringSettings {
        Objects.requireNonNull(bundle, "bundle");
        Objects.requireNonNull(scoring, "scoring");
        Objects.requireNonNull(stateTtl, "stateTtl");
        Objects.requireNonNull(alerts, "alerts");
        Objects.requireNonNull(alertRules, "alertRules");
        presetSchedule = List.copyOf(presetSchedule);
        ModelSpec.Served served = bundle.spec().served(scoring);
        if (maxEvents < 1 || maxEvents > bundle.spec().maxEvents()) {
            throw new IllegalArgumentException("window length " + maxEvents + " must be between 1 and the model's "
                    + bundle.spec().maxEvents());
        }
        if (horizonMs <= 0) {
            throw new IllegalArgumentException("window horizon must be positive, got " + horizonMs + " ms");
        }
        if (modelStateTtlMs < 0) {
            throw new IllegalArgumentException("model state TTL must not be negative, got " + modelStateTtlMs + " ms");
        }
        if (maxBatch < 1 || ortThreads < 1 || maxDelayMs < 0) {
            throw new IllegalArgumentException("batch size and threads must be positive and the delay not negative, "
                    + "got " + maxBatch + ", " + ortThreads + ", " + maxDelayMs + " ms");
        }
        if (alerts.rules.size() != served.outputs().size()) {
            throw new IllegalArgumentException(alerts.rules.size() + " alert rules for the "
                    + served.outputs().size() + " outputs of model " + served.modelVersion());
        }
        if (reasonTop < 0 || (reasonTop > 0 && served.reasonGroups().isEmpty())) {
            throw new IllegalArgumentException("model " + served.modelVersion() + " defines no reason groups: "
                    + "export it again with this version of model-export, or run without reasons (--alert-reasons 0)");
        }
    }

    /**
     * The same job with {@code published} as its model, its thresholds by {@link #alertRules}.
     *
     * @throws IllegalArgumentException when the model cannot be served so (outputs, reasons, window)
     */
    public ScoringSettings withModel(ModelBundle published) {
        AlertPolicy policy = alertRules.policyFor(published.spec().served(scoring));
        return new ScoringSettings(published, scoring, maxEvents, horizonMs, stateTtl, modelStateTtlMs, ortThreads,
                maxBatch, maxDelayMs, policy, reasonTop, alertRules, bundleLocation, shadowScores, List.of());
    }

    /** The model that scores, whichever graph it is. */
    public ModelSpec.Served served() {
        return bundle.spec().served(scoring);
    }

    /** The processing-time TTL on a user's state: the backstop, but never shorter than what event time keeps. */
    public Duration effectiveStateTtl() {
        if (stateTtl.isZero()) {
            return Duration.ZERO;
        }
        Duration keeps = Duration.ofMillis(horizonMs + modelStateTtlMs);
        return stateTtl.compareTo(keeps) >= 0 ? stateTtl : keeps;
    }
}

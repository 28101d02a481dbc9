package dev.seqscore.job;

import dev.seqscore.options.ConfigException;
import dev.seqscore.options.PrefixOption;
import dev.seqscore.alerts.AlertPolicy;
import dev.seqscore.events.EventValidator;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.privacy.Pseudonymizer;
import java.io.Serializable;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Everything the operators of {@link SeqScorePipeline} need, resolved once on the client from the flags and the
 * model bundle: the flags override, model-spec.json supplies every default.
 */
public final class PipelineSettings implements Serializable {
    private static final long serialVersionUID = 1L;

    public final ModelBundle bundle;
    public final int maxEvents;
    public final long horizonMs;
    public final AlertPolicy alertPolicy;
    public final Duration maxOutOfOrderness;
    public final Duration idleness;
    public final long maxFutureSkewMs;
    /** The longest id accepted, in UTF-8 bytes. */
    public final int maxIdBytes;
    public final Duration stateTtl;
    public final int ortThreads;
    public final int scoreBatch;
    public final Duration scoreMaxDelay;
    /** Reasons per alert at most; 0 for none. */
    public final int alertReasons;
    public final int maxParallelism;
    public final EventValidator.Clock clock;
    /** Null unless output user ids are pseudonymised. */
    public final Pseudonymizer pseudonymizer;

    private PipelineSettings(Builder b) {
        this.bundle = Objects.requireNonNull(b.bundle, "bundle");
        ModelSpec spec = bundle.spec();
        this.maxEvents = b.maxEvents == null ? spec.maxEvents() : b.maxEvents;
        if (maxEvents > spec.maxEvents()) {
            throw new ConfigException("--max-events " + maxEvents + " exceeds the model's window of "
                    + spec.maxEvents() + " events (the tensors are that wide)");
        }
        this.horizonMs = b.horizon == null ? spec.horizonMs() : b.horizon.toMillis();
        List<String> outputNames = spec.outputs().stream().map(ModelSpec.OutputSpec::name).toList();
        for (PrefixOption<Double> family : List.of(JobConfig.THRESHOLD, JobConfig.ALERT_RATE)) {
            for (String name : (family == JobConfig.THRESHOLD ? b.thresholds : b.alertRates).keySet()) {
                if (!outputNames.contains(name)) {
                    throw new ConfigException("--" + family.prefix() + "." + name + ": the model has no output '"
                            + name + "' (outputs: " + outputNames + ")");
                }
            }
        }
        List<AlertPolicy.Rule> rules = new ArrayList<>();
        for (ModelSpec.OutputSpec o : spec.outputs()) {
            rules.add(new AlertPolicy.Rule(o.name(), o.alertType(), threshold(o, b)));
        }
        this.alertPolicy = new AlertPolicy(rules, b.cooldown.toMillis(), spec.modelVersion());
        this.maxOutOfOrderness = b.maxOutOfOrderness;
        this.idleness = b.idleness;
        this.maxFutureSkewMs = b.maxFutureSkew.toMillis();
        this.maxIdBytes = b.maxIdBytes;
        this.stateTtl = b.stateTtl;
        this.ortThreads = b.ortThreads;
        this.scoreBatch = b.scoreBatch;
        this.scoreMaxDelay = b.scoreMaxDelay;
        this.alertReasons = b.alertReasons == null ? spec.reasonTop() : b.alertReasons;
        if (alertReasons > 0 && spec.reasonGroups().isEmpty()) {
            throw new ConfigException("--" + JobConfig.ALERT_REASONS.name() + " " + alertReasons + ": model "
                    + spec.modelVersion() + " defines no reason groups (model-spec.json 'reasons'); export it again "
                    + "with this version of model-export, or pass --" + JobConfig.ALERT_REASONS.name() + " 0");
        }
        this.maxParallelism = b.maxParallelism;
        this.clock = b.clock;
        this.pseudonymizer = b.pseudonymizer;
    }

    /**
     * An output's threshold: {@code --threshold.<output>}, else the one {@code --alert-rate.<output>} implies by the
     * spec's score quantiles, else the spec's own (chosen by the rule it records).
     */
    private static double threshold(ModelSpec.OutputSpec o, Builder b) {
        String threshold = "--" + JobConfig.THRESHOLD.prefix() + "." + o.name();
        String alertRate = "--" + JobConfig.ALERT_RATE.prefix() + "." + o.name();
        Double explicit = b.thresholds.get(o.name());
        Double rate = b.alertRates.get(o.name());
        if (explicit != null && rate != null) {
            throw new ConfigException(threshold + " and " + alertRate + " both set the alert threshold of '"
                    + o.name() + "': give only one of them");
        }
        if (explicit != null) {
            return explicit;
        }
        if (rate == null) {
            return o.threshold();
        }
        if (o.quantiles() == null) {
            throw new ConfigException(alertRate + ": the model's spec has no score quantiles for '" + o.name()
                    + "' (bundles before format_version 2 have none); set " + threshold + " instead");
        }
        try {
            return o.quantiles().thresholdFor(rate);
        } catch (IllegalArgumentException e) {
            throw new ConfigException(alertRate + " " + rate + ": " + e.getMessage());
        }
    }

    public ModelSpec spec() {
        return bundle.spec();
    }

    /** Per model output, the score from which an event gets reasons: its alert threshold; null without reasons. */
    public double[] explainThresholds() {
        return alertReasons == 0 ? null : alertPolicy.rules.stream().mapToDouble(r -> r.threshold).toArray();
    }

    public EventValidator validator() {
        return new EventValidator(spec().vocabulary(), maxFutureSkewMs, maxIdBytes, clock);
    }

    public static Builder builder(ModelBundle bundle) {
        return new Builder(bundle);
    }

    /** Settings from the job's flags. */
    public static PipelineSettings from(JobConfig c, ModelBundle bundle) {
        return builder(bundle)
                .maxEvents(c.maxEvents())
                .horizon(c.horizon())
                .thresholds(c.thresholds())
                .alertRates(c.alertRates())
                .cooldown(c.cooldown())
                .maxOutOfOrderness(c.maxOutOfOrderness())
                .idleness(c.idleness())
                .maxFutureSkew(c.maxFutureSkew())
                .maxIdBytes(c.maxIdBytes())
                .stateTtl(c.stateTtl())
                .ortThreads(c.ortThreads())
                .scoreBatch(c.scoreBatch())
                .scoreMaxDelay(c.scoreMaxDelay())
                .alertReasons(c.alertReasons())
                .maxParallelism(c.maxParallelism())
                .pseudonymizer(c.pseudonymizeKeyFile() == null ? null : Pseudonymizer.fromKeyFile(
                        c.pseudonymizeKeyFile(), "--" + JobConfig.PSEUDONYMIZE_KEY_FILE.name()))
                .build();
    }

    /** Defaults equal to the job's flag defaults. */
    public static final class Builder {
        private final ModelBundle bundle;
        private Integer maxEvents;
        private Duration horizon;
        private Map<String, Double> thresholds = Map.of();
        private Map<String, Double> alertRates = Map.of();
        private Duration cooldown = JobConfig.COOLDOWN.defaultValue();
        private Duration maxOutOfOrderness = JobConfig.MAX_OUT_OF_ORDERNESS.defaultValue();
        private Duration idleness = JobConfig.IDLENESS.defaultValue();
        private Duration maxFutureSkew = JobConfig.MAX_FUTURE_SKEW.defaultValue();
        private int maxIdBytes = JobConfig.MAX_ID_BYTES.defaultValue();
        private Duration stateTtl = JobConfig.STATE_TTL.defaultValue();
        private int ortThreads = JobConfig.ORT_THREADS.defaultValue();
        private int scoreBatch = JobConfig.SCORE_BATCH.defaultValue();
        private Duration scoreMaxDelay = JobConfig.SCORE_MAX_DELAY.defaultValue();
        private Integer alertReasons;
        private int maxParallelism = JobConfig.MAX_PARALLELISM.defaultValue();
        private EventValidator.Clock clock = System::currentTimeMillis;
        private Pseudonymizer pseudonymizer;

        private Builder(ModelBundle bundle) {
            this.bundle = bundle;
        }

        public Builder maxEvents(Integer v) { maxEvents = v; return this; }
        public Builder horizon(Duration v) { horizon = v; return this; }
        public Builder thresholds(Map<String, Double> v) { thresholds = Map.copyOf(v); return this; }
        public Builder alertRates(Map<String, Double> v) { alertRates = Map.copyOf(v); return this; }
        public Builder cooldown(Duration v) { cooldown = v; return this; }
        public Builder maxOutOfOrderness(Duration v) { maxOutOfOrderness = v; return this; }
        public Builder idleness(Duration v) { idleness = v; return this; }
        public Builder maxFutureSkew(Duration v) { maxFutureSkew = v; return this; }
        public Builder maxIdBytes(int v) { maxIdBytes = v; return this; }
        public Builder stateTtl(Duration v) { stateTtl = v; return this; }
        public Builder ortThreads(int v) { ortThreads = v; return this; }
        public Builder scoreBatch(int v) { scoreBatch = v; return this; }
        public Builder scoreMaxDelay(Duration v) { scoreMaxDelay = v; return this; }
        /** Null for the model's default. */
        public Builder alertReasons(Integer v) { alertReasons = v; return this; }
        public Builder maxParallelism(int v) { maxParallelism = v; return this; }
        public Builder clock(EventValidator.Clock v) { clock = v; return this; }
        public Builder pseudonymizer(Pseudonymizer v) { pseudonymizer = v; return this; }

        public PipelineSettings build() {
            return new PipelineSettings(this);
        }
    }
}

package dev.seqscore.job;

import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Option;
import dev.seqscore.options.PrefixOption;
import dev.seqscore.alerts.AlertPolicy;
import dev.seqscore.alerts.AlertRules;
import dev.seqscore.lifecycle.ModelControl;
import dev.seqscore.events.EventValidator;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.features.Scoring;
import dev.seqscore.scoring.ScoringSettings;
import dev.seqscore.privacy.Pseudonymizer;
import java.io.Serializable;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Everything the operators of {@link SeqScorePipeline} need, resolved once on the client from the job's options and
 * the model bundle: the flags override, model-spec.json supplies every default. Each option is read here, once, from
 * its {@link JobConfig} definition; tests and tools pass the same flags through {@link Builder}.
 */
public final class PipelineSettings implements Serializable {
    private static final long serialVersionUID = 1L;

    public final ModelBundle bundle;
    public final Scoring scoring;
    /** The model that scores, whichever of the bundle's graphs it is. */
    public final ModelSpec.Served served;
    public final int maxEvents;
    public final long horizonMs;
    public final AlertPolicy alertPolicy;
    /** How a model published to the running job gets its thresholds: by the same flags. */
    public final AlertRules alertRules;
    /** Where the bundle was read ({@code --model}); null for the job jar's. */
    public final String bundleLocation;
    /** Whether the shadow candidate's scores are wanted ({@code --shadow-scores-topic}). */
    public final boolean shadowScores;
    /** Model changes scheduled from the start (the backtest's {@code --model-swap}); empty for the job. */
    public final List<ModelControl> modelSchedule;
    public final Duration maxOutOfOrderness;
    public final Duration idleness;
    public final long maxFutureSkewMs;
    /** The longest id accepted, in UTF-8 bytes. */
    public final int maxIdBytes;
    public final Duration stateTtl;
    public final Duration modelStateTtl;
    public final int ortThreads;
    public final int scoreBatch;
    public final Duration scoreMaxDelay;
    /** Reasons per alert at most; 0 for none. */
    public final int alertReasons;
    public final int maxParallelism;
    public final EventValidator.Clock clock;
    /** Null unless output user ids are pseudonymised. */
    public final Pseudonymizer pseudonymizer;

    private PipelineSettings(JobConfig c, ModelBundle bundle, EventValidator.Clock clock, Pseudonymizer pseudonymizer,
            List<ModelControl> modelSchedule) {
        this.modelSchedule = List.copyOf(modelSchedule);
        this.bundle = Objects.requireNonNull(bundle, "bundle");
        ModelSpec spec = bundle.spec();
        this.scoring = c.get(JobConfig.SCORING);
        try {
            this.served = spec.served(scoring);
        } catch (IllegalArgumentException e) {
            throw new ConfigException("--" + JobConfig.SCORING.name() + " " + Option.cliName(scoring) + ": "
                    + e.getMessage(), e);
        }
        Integer n = c.get(JobConfig.MAX_EVENTS);
        this.maxEvents = n == null ? spec.maxEvents() : n;
        if (maxEvents > spec.maxEvents()) {
            throw new ConfigException("--max-events " + maxEvents + " exceeds the model's window of "
                    + spec.maxEvents() + " events (the tensors are that wide)");
        }
        Duration horizon = c.get(JobConfig.HORIZON);
        this.horizonMs = horizon == null ? spec.horizonMs() : horizon.toMillis();
        Map<String, Double> thresholds = c.get(JobConfig.THRESHOLD);
        Map<String, Double> alertRates = c.get(JobConfig.ALERT_RATE);
        List<String> outputNames = served.outputNames();
        for (PrefixOption<Double> family : List.of(JobConfig.THRESHOLD, JobConfig.ALERT_RATE)) {
            for (String name : (family == JobConfig.THRESHOLD ? thresholds : alertRates).keySet()) {
                if (!outputNames.contains(name)) {
                    throw new ConfigException("--" + family.prefix() + "." + name + ": the model has no output '"
                            + name + "' (outputs: " + outputNames + ")");
                }
            }
        }
        List<AlertPolicy.Rule> rules = new ArrayList<>();
        for (ModelSpec.OutputSpec o : served.outputs()) {
            rules.add(new AlertPolicy.Rule(o.name(), o.alertType(), threshold(o, thresholds, alertRates)));
        }
        this.alertPolicy = new AlertPolicy(rules, c.get(JobConfig.COOLDOWN).toMillis(), served.modelVersion());
        this.alertRules = new AlertRules(thresholds, alertRates, alertPolicy.cooldownMs);
        String model = c.get(JobConfig.MODEL);
        this.bundleLocation = model == null || model.isBlank() ? null : model.trim();
        this.shadowScores = !c.shadowScoresTopic().isEmpty();
        this.maxOutOfOrderness = c.get(JobConfig.MAX_OUT_OF_ORDERNESS);
        this.idleness = c.get(JobConfig.IDLENESS);
        this.maxFutureSkewMs = c.get(JobConfig.MAX_FUTURE_SKEW).toMillis();
        this.maxIdBytes = c.get(JobConfig.MAX_ID_BYTES);
        this.stateTtl = c.get(JobConfig.STATE_TTL);
        Duration modelTtl = c.get(JobConfig.MODEL_STATE_TTL);
        this.modelStateTtl = modelTtl != null ? modelTtl
                : served.incremental() ? Duration.ofMillis(served.resetGapMs()) : Duration.ZERO;
        this.ortThreads = c.get(JobConfig.ORT_THREADS);
        this.scoreBatch = c.get(JobConfig.SCORE_BATCH);
        this.scoreMaxDelay = c.get(JobConfig.SCORE_MAX_DELAY);
        Integer reasons = c.get(JobConfig.ALERT_REASONS);
        this.alertReasons = reasons == null ? served.reasonTop() : reasons;
        if (alertReasons > 0 && served.reasonGroups().isEmpty()) {
            throw new ConfigException("--" + JobConfig.ALERT_REASONS.name() + " " + alertReasons + ": model "
                    + served.modelVersion() + " defines no reason groups (model-spec.json 'reasons'); export it again "
                    + "with this version of model-export, or pass --" + JobConfig.ALERT_REASONS.name() + " 0");
        }
        this.maxParallelism = c.get(JobConfig.MAX_PARALLELISM);
        this.clock = clock;
        this.pseudonymizer = pseudonymizer;
    }

    /**
     * An output's threshold: {@code --threshold.<output>}, else the one {@code --alert-rate.<output>} implies by the
     * spec's score quantiles, else the spec's own (chosen by the rule it records).
     */
    private static double threshold(ModelSpec.OutputSpec o, Map<String, Double> thresholds,
            Map<String, Double> alertRates) {
        String threshold = "--" + JobConfig.THRESHOLD.prefix() + "." + o.name();
        String alertRate = "--" + JobConfig.ALERT_RATE.prefix() + "." + o.name();
        Double explicit = thresholds.get(o.name());
        Double rate = alertRates.get(o.name());
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

    /** What the scoring operator needs. */
    public ScoringSettings scoringSettings() {
        return new ScoringSettings(bundle, scoring, maxEvents, horizonMs, stateTtl, modelStateTtl.toMillis(),
                ortThreads, scoreBatch, scoreMaxDelay.toMillis(), alertPolicy, alertReasons, alertRules, bundleLocation,
                shadowScores, modelSchedule);
    }

    /** The served model's output names, in the order of every score array. */
    public List<String> outputNames() {
        return served.outputNames();
    }

    public EventValidator validator() {
        return new EventValidator(spec().vocabulary(), maxFutureSkewMs, maxIdBytes, clock);
    }

    public static Builder builder(ModelBundle bundle) {
        return new Builder(bundle);
    }

    /** Settings from the job's flags. */
    public static PipelineSettings from(JobConfig c, ModelBundle bundle) {
        return from(c, bundle, List.of());
    }

    /** Settings from the job's flags, with model changes scheduled from the start (the backtest's). */
    public static PipelineSettings from(JobConfig c, ModelBundle bundle, List<ModelControl> modelSchedule) {
        return new PipelineSettings(c, bundle, System::currentTimeMillis, c.get(JobConfig.PSEUDONYMIZE_KEY_FILE) == null
                ? null : Pseudonymizer.fromKeyFile(c.get(JobConfig.PSEUDONYMIZE_KEY_FILE),
                        "--" + JobConfig.PSEUDONYMIZE_KEY_FILE.name()), modelSchedule);
    }

    /**
     * Settings for tests and tools: the job's own flags (so every default and check is the job's), plus what no flag
     * sets (a clock, a pseudonymizer built in memory).
     */
    public static final class Builder {
        private final ModelBundle bundle;
        private final List<String> args = new ArrayList<>();
        private EventValidator.Clock clock = System::currentTimeMillis;
        private Pseudonymizer pseudonymizer;
        private List<ModelControl> modelSchedule = List.of();

        private Builder(ModelBundle bundle) {
            this.bundle = bundle;
        }

        /** Job flags, e.g. {@code args("--score-batch", "1", "--threshold.purchase_30m", "0.2")}. */
        public Builder args(String... more) {
            args.addAll(List.of(more));
            return this;
        }

        /** One job option, e.g. {@code with(JobConfig.SCORE_BATCH, 1)}. */
        public Builder with(Option<?> option, Object value) {
            return args("--" + option.name() + "=" + (value instanceof Enum<?> e ? Option.cliName(e) : value));
        }

        /** {@code --threshold.<output>} for each entry. */
        public Builder thresholds(Map<String, Double> byOutput) {
            byOutput.forEach((output, t) -> args("--" + JobConfig.THRESHOLD.prefix() + "." + output + "=" + t));
            return this;
        }

        public Builder clock(EventValidator.Clock v) { clock = v; return this; }
        public Builder pseudonymizer(Pseudonymizer v) { pseudonymizer = v; return this; }
        public Builder modelSchedule(List<ModelControl> v) { modelSchedule = v; return this; }

        public PipelineSettings build() {
            return new PipelineSettings(JobConfig.parse(args.toArray(String[]::new)), bundle, clock, pseudonymizer,
                    modelSchedule);
        }
    }
}

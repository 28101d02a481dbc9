package dev.seqscore.job;

import dev.seqscore.alerts.AlertIds;
import dev.seqscore.avro.Alert;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.avro.ErasureAudit;
import dev.seqscore.avro.ModelEvent;
import dev.seqscore.avro.Score;
import dev.seqscore.events.DeadLetterReason;
import dev.seqscore.events.DeadLetters;
import dev.seqscore.events.EagerWatermarks;
import dev.seqscore.events.EventValidator;
import dev.seqscore.events.InputRecord;
import dev.seqscore.metrics.JobMetrics;
import dev.seqscore.privacy.Pseudonymizer;
import dev.seqscore.scoring.ScoredEvent;
import dev.seqscore.scoring.ScoringOperator;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * The job as a pure function over DataStreams: input records in; alerts, scores and dead letters out. Sources and
 * sinks are the caller's, so the cluster job, the demo, the backtest and the tests all run these same operators.
 *
 * <p>Operator uids are constants: they name the state in savepoints, so they must never change.
 */
public final class SeqScorePipeline {
    public static final String UID_VALIDATE = "validate-events";
    public static final String UID_SCORE = "score-sequences";
    public static final String UID_SCORE_RECORDS = "score-records";
    public static final String UID_PSEUDONYMIZE_ALERTS = "pseudonymize-alerts";
    public static final String UID_VALIDATE_ERASURES = "validate-erasure-requests";
    public static final String UID_PSEUDONYMIZE_ERASURES = "pseudonymize-erasure-answers";
    public static final String UID_SHADOW_SCORE_RECORDS = "shadow-score-records";

    public static final OutputTag<DeadLetter> INVALID =
            new OutputTag<>("invalid-events", TypeInformation.of(DeadLetter.class));

    private SeqScorePipeline() {}

    /** What the pipeline produces; each stream is the caller's to sink. */
    public record Outputs(DataStream<Alert> alerts, DataStream<ScoredEvent> scores, DataStream<DeadLetter> deadLetters,
                          DataStream<ErasureAudit> erasures, DataStream<ModelEvent> modelEvents,
                          DataStream<ScoredEvent> shadowScores) {
        /** The scores as Avro {@link Score} records, for the scores topic. */
        public DataStream<Score> scoreRecords(PipelineSettings s) {
            List<String> names = s.outputNames();
            String version = s.served.modelVersion();
            return scores.map(new ToScoreRecord(names, version, s.pseudonymizer))
                    .name("Scores to Avro")
                    .uid(UID_SCORE_RECORDS);
        }

        /** The shadow candidate's scores as Avro {@link Score} records, each with the candidate's version. */
        public DataStream<Score> shadowScoreRecords(PipelineSettings s) {
            return shadowScores.map(new ToScoreRecord(s.outputNames(), s.served.modelVersion(), s.pseudonymizer))
                    .name("Shadow scores to Avro")
                    .uid(UID_SHADOW_SCORE_RECORDS);
        }
    }

    /**
     * Event time comes from the click itself. A record that validation will reject gets no say in the watermark:
     * one bad timestamp far in the future would otherwise make every later click late.
     */
    public static WatermarkStrategy<InputRecord> watermarks(PipelineSettings s) {
        EventValidator validator = s.validator();
        Duration bound = s.maxOutOfOrderness;
        WatermarkStrategy<InputRecord> w = WatermarkStrategy
                .<InputRecord>forGenerator(ctx -> new EagerWatermarks<>(bound))
                .withTimestampAssigner((r, kafkaTs) -> validator.check(r).ok() ? r.eventTime : Long.MIN_VALUE);
        return s.idleness.isZero() ? w : w.withIdleness(s.idleness);
    }

    public static Outputs build(DataStream<InputRecord> input, PipelineSettings s) {
        return build(input, null, s);
    }

    /**
     * The pipeline with erasure requests ({@link dev.seqscore.events.ErasureRequests}, null for none): each one
     * clears what the scorer keeps for its user, and its answer comes out as {@link Outputs#erasures()}.
     */
    public static Outputs build(DataStream<InputRecord> input, DataStream<InputRecord> erasureRequests,
            PipelineSettings s) {
        return build(input, erasureRequests, null, s);
    }

    /**
     * The pipeline with erasure requests and model control records (JSON text, {@link
     * dev.seqscore.lifecycle.ModelControl}; null for none). Control records go to every scorer subtask; their
     * source must stay idle in event time ({@link dev.seqscore.lifecycle.ModelControlSource#watermarks()}), since
     * each takes effect at the event time it names.
     */
    public static Outputs build(DataStream<InputRecord> input, DataStream<InputRecord> erasureRequests,
            DataStream<String> modelControl, PipelineSettings s) {
        // Chained operators hand records on without a defensive copy (an Avro Alert's copy is a deep one). Safe here:
        // every operator makes new output objects, keeps none of its inputs, and changes an input only where it is
        // that input's one consumer (the pseudonymizer).
        input.getExecutionEnvironment().getConfig().enableObjectReuse();
        SingleOutputStreamOperator<InputRecord> valid = input
                .process(new Validate(s.validator()))
                .name("Validate events")
                .uid(UID_VALIDATE)
                // Same parallelism as the input, so it chains: a rebalance here could reorder one user's events
                // that share a timestamp, and ties are applied in arrival order.
                .setParallelism(input.getParallelism());

        DataStream<InputRecord> toScore = valid;
        DataStream<DeadLetter> invalid = valid.getSideOutput(INVALID);
        if (erasureRequests != null) {
            SingleOutputStreamOperator<InputRecord> requests = erasureRequests
                    .process(new Validate(s.validator()))
                    .name("Validate erasure requests")
                    .uid(UID_VALIDATE_ERASURES)
                    .setParallelism(erasureRequests.getParallelism());
            // After validation, so that the clicks keep their chain into it; requests join them on the way to the
            // scorer, which applies each one at once, in the order they arrive.
            toScore = valid.union(requests);
            invalid = invalid.union(requests.getSideOutput(INVALID));
        }
        var keyed = toScore.keyBy(r -> r.userId, Types.STRING);
        ScoringOperator scorer = new ScoringOperator(s.scoringSettings());
        // One operator either way, so that its uid and state are the same with and without model control.
        SingleOutputStreamOperator<ScoredEvent> scored = (modelControl == null
                ? keyed.transform("Score user sequences", TypeInformation.of(ScoredEvent.class), scorer)
                : keyed.connect(modelControl.broadcast())
                        .transform("Score user sequences", TypeInformation.of(ScoredEvent.class), scorer))
                .uid(UID_SCORE)
                .setMaxParallelism(s.maxParallelism);

        DataStream<Alert> alerts = scored.getSideOutput(ScoringOperator.ALERTS);
        DataStream<Alert> published = s.pseudonymizer == null ? alerts : alerts
                .map(new PseudonymizeAlerts(s.pseudonymizer))
                .name("Pseudonymize alerts")
                .uid(UID_PSEUDONYMIZE_ALERTS);

        DataStream<ErasureAudit> erasures = scored.getSideOutput(ScoringOperator.ERASURES);
        if (s.pseudonymizer != null) {
            erasures = erasures.map(new PseudonymizeErasures(s.pseudonymizer))
                    .name("Pseudonymize erasure answers")
                    .uid(UID_PSEUDONYMIZE_ERASURES);
        }
        DataStream<DeadLetter> deadLetters = invalid.union(scored.getSideOutput(ScoringOperator.LATE));
        return new Outputs(published, scored, deadLetters, erasures, scored.getSideOutput(ScoringOperator.MODEL_EVENTS),
                scored.getSideOutput(ScoringOperator.SHADOW_SCORES));
    }

    /** Splits off what cannot be scored, counting every record and each reason. */
    static final class Validate extends ProcessFunction<InputRecord, InputRecord> {
        private static final long serialVersionUID = 1L;
        private final EventValidator validator;
        private transient Counter received;
        private transient Map<DeadLetterReason, Counter> counters;

        Validate(EventValidator validator) {
            this.validator = validator;
        }

        @Override
        public void open(OpenContext ctx) {
            MetricGroup metrics = getRuntimeContext().getMetricGroup();
            received = metrics.counter(JobMetrics.EVENTS_RECEIVED);
            counters = new EnumMap<>(DeadLetterReason.class);
            for (DeadLetterReason r : DeadLetterReason.values()) {
                // Lateness is judged against the watermark in the scorer, which counts LATE_EVENT itself: a second,
                // always-zero series here would only confuse a per-operator view.
                if (r != DeadLetterReason.LATE_EVENT) {
                    counters.put(r, JobMetrics.deadLetters(metrics, r.name()));
                }
            }
        }

        @Override
        public void processElement(InputRecord r, Context ctx, Collector<InputRecord> out) {
            received.inc();
            EventValidator.Verdict v = validator.check(r);
            if (v.ok()) {
                out.collect(r);
            } else {
                counters.get(v.reason).inc();
                ctx.output(INVALID, DeadLetters.of(v.reason, v.detail, r, ctx.timerService().currentProcessingTime()));
            }
        }
    }

    /**
     * Replaces the user id with its pseudonym, and the alert id with one derived from the pseudonym: the raw-id alert
     * id would let anyone with a list of candidate user ids confirm which one alerted.
     */
    static final class PseudonymizeAlerts implements MapFunction<Alert, Alert> {
        private static final long serialVersionUID = 1L;
        private final Pseudonymizer pseudonymizer;

        PseudonymizeAlerts(Pseudonymizer pseudonymizer) {
            this.pseudonymizer = pseudonymizer;
        }

        @Override
        public Alert map(Alert a) {
            String pseudonym = pseudonymizer.pseudonym(a.getUserId());
            a.setUserId(pseudonym);
            a.setAlertId(AlertIds.of(pseudonym, a.getEventTime().toEpochMilli(), a.getEventType(), a.getItemId(),
                    a.getAlertType()));
            return a;
        }
    }

    /** The answer to an erasure request names the pseudonym, as every other output does. */
    static final class PseudonymizeErasures implements MapFunction<ErasureAudit, ErasureAudit> {
        private static final long serialVersionUID = 1L;
        private final Pseudonymizer pseudonymizer;

        PseudonymizeErasures(Pseudonymizer pseudonymizer) {
            this.pseudonymizer = pseudonymizer;
        }

        @Override
        public ErasureAudit map(ErasureAudit a) {
            a.setUserId(pseudonymizer.pseudonym(a.getUserId()));
            return a;
        }
    }

    static final class ToScoreRecord implements MapFunction<ScoredEvent, Score> {
        private static final long serialVersionUID = 1L;
        private final List<String> outputs;
        private final String modelVersion;
        private final Pseudonymizer pseudonymizer;

        ToScoreRecord(List<String> outputs, String modelVersion, Pseudonymizer pseudonymizer) {
            this.outputs = outputs;
            this.modelVersion = modelVersion;
            this.pseudonymizer = pseudonymizer;
        }

        @Override
        public Score map(ScoredEvent s) {
            Map<String, Double> scores = new HashMap<>();
            for (int i = 0; i < outputs.size(); i++) {
                scores.put(outputs.get(i), (double) s.scores[i]);
            }
            return Score.newBuilder()
                    .setUserId(pseudonymizer == null ? s.userId : pseudonymizer.pseudonym(s.userId))
                    .setEventTime(Instant.ofEpochMilli(s.eventTime))
                    .setEventType(s.eventType)
                    .setItemId(s.itemId)
                    .setScores(scores)
                    .setModelVersion(s.modelVersion != null ? s.modelVersion : modelVersion)
                    .setWindowLength(s.windowLength)
                    .setScoredAt(Instant.now())
                    .build();
        }
    }
}

package dev.seqscore.job;

import dev.seqscore.events.InputRecord;
import dev.seqscore.model.ModelBundle;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * The cluster job's entry point: {@code flink run seqscore-flink-job-*-shaded.jar --bootstrap-servers ...}.
 *
 * <p>It checks the flags and the model on the client, before anything is submitted, so that a typo or a broken
 * bundle fails in seconds with a message rather than in a restart loop on the cluster.
 */
public final class SeqScoreJob {
    public static final String JOB_NAME = "SeqScore";

    private SeqScoreJob() {}

    /**
     * Never calls {@code System.exit}: when a cluster runs this main (REST or application mode), exiting would take
     * the JobManager down with it. A bad flag or model is printed and thrown, so {@code flink run} reports it.
     */
    public static void main(String[] args) throws Exception {
        JobConfig config;
        try {
            config = JobConfig.parse(args);
        } catch (ConfigException e) {
            System.err.println("error: " + e.getMessage());
            System.err.println();
            System.err.println(JobConfig.usage("flink run seqscore-flink-job.jar"));
            throw e;
        }
        if (config.help()) {
            System.out.println(JobConfig.usage("flink run seqscore-flink-job.jar"));
            return;
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        try {
            assemble(env, config, loadModel(config));
        } catch (IllegalArgumentException | ConfigException e) {
            // A missing or broken model, or flags that do not fit it: say what, not where in our code.
            System.err.println("error: " + e.getMessage());
            throw e;
        }
        env.execute(JOB_NAME);
    }

    /** Loads and checks the bundle, failing with a message that names the problem. */
    public static ModelBundle loadModel(JobConfig config) {
        ModelBundle bundle = ModelBundle.load(config.modelDir());
        bundle.validate();
        return bundle;
    }

    /**
     * Wires Kafka in and out around {@link SeqScorePipeline} on the given environment, with checkpointing for
     * exactly-once output. The demo and the integration tests call this with their own environment.
     */
    public static SeqScorePipeline.Outputs assemble(
            StreamExecutionEnvironment env, JobConfig config, ModelBundle bundle) {
        PipelineSettings settings = PipelineSettings.from(config, bundle);
        env.enableCheckpointing(config.checkpointInterval().toMillis(), CheckpointingMode.EXACTLY_ONCE);
        if (config.parallelism() != null) {
            env.setParallelism(config.parallelism());
        }
        env.setMaxParallelism(config.maxParallelism());

        DataStream<InputRecord> clicks = env
                .fromSource(KafkaIO.source(config), SeqScorePipeline.watermarks(settings), "Kafka clicks")
                .uid("kafka-clicks-source");
        SeqScorePipeline.Outputs out = SeqScorePipeline.build(clicks, settings);

        out.alerts().sinkTo(KafkaIO.alertSink(config)).name("Kafka alerts").uid("kafka-alerts-sink");
        out.deadLetters().sinkTo(KafkaIO.deadLetterSink(config)).name("Kafka dead letters").uid("kafka-dlq-sink");
        if (!config.scoresTopic().isEmpty()) {
            out.scoreRecords(settings).sinkTo(KafkaIO.scoreSink(config)).name("Kafka scores").uid("kafka-scores-sink");
        }
        return out;
    }
}

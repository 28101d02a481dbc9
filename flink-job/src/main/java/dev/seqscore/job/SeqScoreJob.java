package dev.seqscore.job;

import dev.seqscore.events.ErasureRequests;
import dev.seqscore.lifecycle.ModelControlSource;
import dev.seqscore.events.InputRecord;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.options.CommandLine;
import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Option;
import dev.seqscore.options.OptionValues;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.configuration.StateRecoveryOptions;
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
        OptionValues options = new CommandLine(JobConfig.OPTIONS, JobConfig.usage("flink run seqscore-flink-job.jar"))
                .check(JobConfig::of).parse(args);
        if (options == null) {
            return;
        }
        JobConfig config = JobConfig.of(options);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        try {
            ModelBundle bundle = loadModel(config);
            // flink run -s reaches main() as this option: check the savepoint before Flink tries to restore it.
            String savepoint = env.getConfiguration().get(StateRecoveryOptions.SAVEPOINT_PATH);
            if (savepoint != null && !savepoint.isBlank()) {
                SavepointCheck.check(savepoint, PipelineSettings.from(config, bundle), System.err);
            }
            assemble(env, config, bundle);
        } catch (IllegalArgumentException | ConfigException e) {
            // A missing or broken model, or flags that do not fit it: say what, not where in our code.
            System.err.println("error: " + e.getMessage());
            throw e;
        }
        env.execute(JOB_NAME);
    }

    /**
     * Loads and checks the bundle, failing with a message that names the problem. Validation leaves nothing pinned
     * in the JVM that runs main() (a JobManager, for REST submissions): see {@link ModelBundle#validate()}.
     */
    public static ModelBundle loadModel(JobConfig config) {
        try {
            ModelBundle bundle = ModelBundle.locate(config.model());
            bundle.validate();
            return bundle;
        } catch (NoClassDefFoundError e) {
            if (String.valueOf(e.getMessage()).startsWith("ai/onnxruntime/")) {
                // The slim jar on a cluster that lacks ONNX Runtime in lib/.
                throw new IllegalArgumentException("ONNX Runtime is not on the class path (" + e.getMessage()
                        + " not found): the slim job jar needs onnxruntime-*.jar (flink-job/target/flink-lib/) in "
                        + "Flink's lib/ on the JobManager and every TaskManager, see README \"Running on a Flink "
                        + "cluster\"; or submit the shaded jar", e);
            }
            throw e;
        }
    }

    /**
     * Checkpoint storage and state backend from the flags, over what the environment already has (a cluster's
     * config.yaml). Refuses JobManager memory storage: past 5 MB of state every checkpoint would fail, and the job
     * would restart forever without committing output.
     */
    static void configureState(StreamExecutionEnvironment env, JobConfig config) {
        Configuration conf = new Configuration();
        if (config.checkpointDir() != null) {
            conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, config.checkpointDir());
            conf.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
        }
        if (config.savepointDir() != null) {
            conf.set(CheckpointingOptions.SAVEPOINT_DIRECTORY, config.savepointDir());
        }
        JobConfig.StateBackend backend = config.get(JobConfig.STATE_BACKEND);
        if (backend != null) {
            conf.set(StateBackendOptions.STATE_BACKEND, Option.cliName(backend));
            if (backend == JobConfig.StateBackend.ROCKSDB) {
                // Uploads only what changed since the last checkpoint: what makes large keyed state affordable.
                conf.set(CheckpointingOptions.INCREMENTAL_CHECKPOINTS, true);
            }
        }
        env.configure(conf);
        ReadableConfig effective = env.getConfiguration();
        String storage = effective.getOptional(CheckpointingOptions.CHECKPOINT_STORAGE).orElse("");
        boolean hasDir = effective.getOptional(CheckpointingOptions.CHECKPOINTS_DIRECTORY)
                .filter(d -> !d.isBlank()).isPresent();
        if (!hasDir || storage.equalsIgnoreCase("jobmanager")) {
            throw new ConfigException("no durable checkpoint storage: pass --" + JobConfig.CHECKPOINT_DIR.name()
                    + " file:///shared/path (or s3://..., hdfs://...), or set execution.checkpointing.dir in the "
                    + "cluster's config.yaml" + (storage.equalsIgnoreCase("jobmanager")
                            ? " and remove execution.checkpointing.storage: jobmanager" : "")
                    + ". Without it Flink keeps checkpoints in JobManager memory, where state over 5 MB fails every "
                    + "checkpoint and the job restarts forever.");
        }
    }

    /**
     * Wires Kafka in and out around {@link SeqScorePipeline} on the given environment, with checkpointing for
     * exactly-once output. The demo and the integration tests call this with their own environment.
     */
    public static SeqScorePipeline.Outputs assemble(
            StreamExecutionEnvironment env, JobConfig config, ModelBundle bundle) {
        PipelineSettings settings = PipelineSettings.from(config, bundle);
        configureState(env, config);
        env.enableCheckpointing(config.get(JobConfig.CHECKPOINT_INTERVAL).toMillis(), CheckpointingMode.EXACTLY_ONCE);
        if (config.get(JobConfig.PARALLELISM) != null) {
            env.setParallelism(config.get(JobConfig.PARALLELISM));
        }
        env.setMaxParallelism(config.get(JobConfig.MAX_PARALLELISM));

        DataStream<InputRecord> clicks = env
                .fromSource(KafkaIO.source(config), SeqScorePipeline.watermarks(settings), "Kafka clicks")
                .uid("kafka-clicks-source");
        DataStream<InputRecord> erasureRequests = config.erasureTopic().isEmpty() ? null : env
                .fromSource(KafkaIO.erasureSource(config), ErasureRequests.watermarks(), "Kafka erasure requests")
                .uid("kafka-erasure-source");
        DataStream<String> modelControl = config.modelControlTopic().isEmpty() ? null : env
                .fromSource(KafkaIO.modelControlSource(config, System.currentTimeMillis()),
                        ModelControlSource.watermarks(), "Kafka model control")
                .uid("kafka-model-control-source")
                .setParallelism(1);
        SeqScorePipeline.Outputs out = SeqScorePipeline.build(clicks, erasureRequests, modelControl, settings);

        out.alerts().sinkTo(KafkaIO.alertSink(config)).name("Kafka alerts").uid("kafka-alerts-sink");
        out.deadLetters().sinkTo(KafkaIO.deadLetterSink(config)).name("Kafka dead letters").uid("kafka-dlq-sink");
        if (erasureRequests != null) {
            out.erasures().sinkTo(KafkaIO.erasureAuditSink(config)).name("Kafka erasure answers")
                    .uid("kafka-erasure-audit-sink");
        }
        if (modelControl != null) {
            out.modelEvents().sinkTo(KafkaIO.modelStatusSink(config)).name("Kafka model status")
                    .uid("kafka-model-status-sink");
        }
        if (!config.shadowScoresTopic().isEmpty()) {
            out.shadowScoreRecords(settings).sinkTo(KafkaIO.shadowScoreSink(config)).name("Kafka shadow scores")
                    .uid("kafka-shadow-scores-sink");
        }
        if (!config.scoresTopic().isEmpty()) {
            out.scoreRecords(settings).sinkTo(KafkaIO.scoreSink(config)).name("Kafka scores").uid("kafka-scores-sink");
        }
        return out;
    }
}

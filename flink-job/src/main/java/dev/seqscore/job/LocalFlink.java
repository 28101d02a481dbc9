package dev.seqscore.job;

import java.net.URI;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * A local Flink cluster in this JVM that outlives the jobs run on it. A per-job local environment shuts its
 * cluster down the moment the job finishes, and the collect iterators, which close a moment later, then warn that
 * "some data might be lost" on every clean run; with this cluster they close while it still answers.
 */
public final class LocalFlink implements AutoCloseable {
    private final MiniCluster cluster;
    private final URI rest;

    private LocalFlink(MiniCluster cluster, URI rest) {
        this.cluster = cluster;
        this.rest = rest;
    }

    /** Starts a cluster with {@code slots} task slots, REST on a free loopback port. */
    public static LocalFlink start(int slots) throws Exception {
        Configuration conf = new Configuration();
        conf.set(RestOptions.BIND_ADDRESS, "127.0.0.1");
        conf.set(RestOptions.ADDRESS, "127.0.0.1");
        conf.set(RestOptions.PORT, 0);
        conf.set(TaskManagerOptions.NUM_TASK_SLOTS, slots);
        MiniCluster cluster = new MiniCluster(new MiniClusterConfiguration.Builder()
                .setConfiguration(conf)
                .setNumTaskManagers(1)
                .setNumSlotsPerTaskManager(slots)
                .build());
        cluster.start();
        return new LocalFlink(cluster, cluster.getRestAddress().get());
    }

    /** An environment whose jobs run on this cluster; the job's classes come from this JVM's class path. */
    public StreamExecutionEnvironment environment(int parallelism) {
        StreamExecutionEnvironment env =
                StreamExecutionEnvironment.createRemoteEnvironment(rest.getHost(), rest.getPort(), new Configuration());
        env.setParallelism(parallelism);
        return env;
    }

    /** The REST endpoint, e.g. {@code http://127.0.0.1:40123}. */
    public URI restAddress() {
        return rest;
    }

    @Override
    public void close() throws Exception {
        cluster.close();
    }
}

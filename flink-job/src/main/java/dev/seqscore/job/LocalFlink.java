package dev.seqscore.job;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.concurrent.locks.LockSupport;
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
        LocalFlink flink = new LocalFlink(cluster, cluster.getRestAddress().get());
        flink.awaitRestLeader();
        return flink;
    }

    /** A job submitted while the REST endpoint still elects its leader is refused and retried with a warning. */
    private void awaitRestLeader() throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        HttpRequest overview = HttpRequest.newBuilder(rest.resolve("/overview")).build();
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (http.send(overview, HttpResponse.BodyHandlers.discarding()).statusCode() != 200) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the local Flink cluster's REST endpoint at " + rest
                        + " did not come up within 60 s");
            }
            LockSupport.parkNanos(Duration.ofMillis(50).toNanos());
        }
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

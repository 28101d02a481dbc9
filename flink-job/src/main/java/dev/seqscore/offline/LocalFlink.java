package dev.seqscore.offline;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.JobManagerOptions;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.configuration.WebOptions;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.runtime.jobgraph.SavepointRestoreSettings;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.graph.StreamGraph;

/**
 * A Flink MiniCluster in this JVM, for the backtest, the bench and the demo: it outlives the jobs run on it, and every
 * port it opens is bound to one address, loopback unless the caller opens it on purpose.
 *
 * <p>Outliving the jobs: a per-job local environment shuts its cluster down the moment the job finishes, and the
 * collect iterators, which close a moment later, then warn that "some data might be lost" on every clean run; with
 * this cluster they close while it still answers. Binding: Flink's REST API accepts jar uploads and runs them, so a
 * cluster that listened on all interfaces would let anyone on the network run code on this machine.
 */
public final class LocalFlink implements AutoCloseable {
    public static final String LOOPBACK = "127.0.0.1";

    private final MiniCluster cluster;
    private final Configuration configuration;
    private final URI restAddress;

    private LocalFlink(MiniCluster cluster, Configuration configuration, URI restAddress) {
        this.cluster = cluster;
        this.configuration = configuration;
        this.restAddress = restAddress;
    }

    /** A loopback cluster with {@code slots} task slots, REST on a free port. */
    public static LocalFlink start(int slots) throws Exception {
        return start(LOOPBACK, 0, slots, Map.of());
    }

    /**
     * Starts a cluster of one TaskManager and returns once its REST endpoint answers.
     *
     * @param bindAddress the address every server socket binds to ({@link #LOOPBACK}, or e.g. 0.0.0.0 to open them)
     * @param restPort the REST API and web UI port; 0 picks a free one
     * @param slots task slots: the job's parallelism
     * @param overrides further Flink options (key to value, e.g. a metrics reporter), applied last; they can
     *     override the above on purpose
     */
    public static LocalFlink start(String bindAddress, int restPort, int slots, Map<String, String> overrides)
            throws Exception {
        Configuration conf = configuration(bindAddress, restPort, overrides);
        conf.set(TaskManagerOptions.NUM_TASK_SLOTS, slots);
        MiniCluster cluster = new MiniCluster(new MiniClusterConfiguration.Builder()
                .setConfiguration(conf)
                .setNumTaskManagers(1)
                .setNumSlotsPerTaskManager(slots)
                .build());
        try {
            cluster.start();
            LocalFlink flink = new LocalFlink(cluster, conf, cluster.getRestAddress().get(30, TimeUnit.SECONDS));
            flink.awaitRestLeader();
            return flink;
        } catch (Exception e) {
            cluster.close();
            throw e;
        }
    }

    /** The cluster's configuration: addresses, ports and the overrides; jobs built against it inherit it. */
    static Configuration configuration(String bindAddress, int restPort, Map<String, String> overrides) {
        Configuration c = new Configuration();
        // The REST API and web UI: where the server listens, and the address it tells clients.
        c.set(RestOptions.BIND_ADDRESS, bindAddress);
        c.set(RestOptions.ADDRESS, clientAddress(bindAddress));
        c.set(RestOptions.BIND_PORT, Integer.toString(restPort));
        // The JobManager's RPC and the blob server (which ships job artefacts) bind to jobmanager.bind-host; the
        // TaskManager's RPC and data (shuffle) ports to taskmanager.bind-host. A MiniCluster uses in-JVM RPC, but
        // a remote-RPC or multi-TaskManager setup would open these too.
        c.set(JobManagerOptions.BIND_HOST, bindAddress);
        c.set(JobManagerOptions.ADDRESS, clientAddress(bindAddress));
        c.set(TaskManagerOptions.BIND_HOST, bindAddress);
        c.set(TaskManagerOptions.HOST, clientAddress(bindAddress));
        // Nothing here runs uploaded jars: this removes the web UI's /jars endpoints. A REST client can still submit
        // a job graph with its jars (POST /jobs, what `flink run` and the backtest do), so the bind address is the
        // protection.
        c.set(WebOptions.SUBMIT_ENABLE, false);
        c.addAll(Configuration.fromMap(overrides));
        return c;
    }

    /** The address clients use for a bind address: a wildcard bind is reachable through loopback too. */
    public static String clientAddress(String bindAddress) {
        return bindAddress.equals("0.0.0.0") || bindAddress.equals("::") ? LOOPBACK : bindAddress;
    }

    /** A job submitted while the REST endpoint still elects its leader is refused and retried with a warning. */
    private void awaitRestLeader() throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        HttpRequest overview = HttpRequest.newBuilder(restAddress.resolve("/overview")).build();
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (http.send(overview, HttpResponse.BodyHandlers.discarding()).statusCode() != 200) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the local Flink cluster's REST endpoint at " + restAddress
                        + " did not come up within 60 s");
            }
            LockSupport.parkNanos(Duration.ofMillis(50).toNanos()); // poll interval of a deadline loop
        }
    }

    /**
     * An environment whose {@code execute()} and {@code collect()} run on this cluster through its REST API; the
     * job's classes come from this JVM's class path.
     */
    public StreamExecutionEnvironment environment(int parallelism) {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createRemoteEnvironment(
                restAddress.getHost(), restAddress.getPort(), new Configuration());
        env.setParallelism(parallelism);
        return env;
    }

    /**
     * An environment that carries this cluster's configuration (checkpointing options included), to build a job
     * for {@link #submit}.
     */
    public StreamExecutionEnvironment environment() {
        return new StreamExecutionEnvironment(new Configuration(configuration));
    }

    /** Submits what was built on {@code env} and returns once the cluster accepted it. */
    public JobID submit(StreamExecutionEnvironment env, String jobName) throws Exception {
        return submit(env, jobName, null);
    }

    /** As {@link #submit(StreamExecutionEnvironment, String)}, starting from a savepoint unless it is null. */
    public JobID submit(StreamExecutionEnvironment env, String jobName, String savepoint) throws Exception {
        StreamGraph graph = env.getStreamGraph();
        graph.setJobName(jobName);
        if (savepoint != null) {
            graph.setSavepointRestoreSettings(SavepointRestoreSettings.forPath(savepoint));
        }
        return cluster.submitJob(graph.getJobGraph(Thread.currentThread().getContextClassLoader()))
                .get(60, TimeUnit.SECONDS).getJobID();
    }

    public JobStatus status(JobID job) throws Exception {
        return cluster.getJobStatus(job).get(10, TimeUnit.SECONDS);
    }

    /** Cancels the job if it is still running; a job that already ended is fine. */
    public void cancel(JobID job) {
        try {
            cluster.cancelJob(job).get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            // Already finished or failed: nothing left to cancel.
        }
    }

    /** The REST API and web UI, e.g. {@code http://127.0.0.1:40123}. */
    public URI restAddress() {
        return restAddress;
    }

    @Override
    public void close() throws Exception {
        cluster.close();
    }
}

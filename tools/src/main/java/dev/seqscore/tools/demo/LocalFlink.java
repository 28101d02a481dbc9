package dev.seqscore.tools.demo;

import dev.seqscore.tools.metrics.PrometheusReporting;
import java.net.URI;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.JobManagerOptions;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.configuration.WebOptions;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.graph.StreamGraph;

/**
 * A Flink MiniCluster in this JVM with its REST API and web UI, every port bound to one address: loopback unless the
 * caller opens it on purpose. Flink's REST API accepts jar uploads and runs them, so a demo that listened on all
 * interfaces would let anyone on the network run code on this machine.
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

    /**
     * Starts a cluster of one TaskManager.
     *
     * @param bindAddress the address every server socket binds to ({@link #LOOPBACK}, or e.g. 0.0.0.0 to open them)
     * @param restPort the REST API and web UI port; 0 picks a free one
     * @param metricsPort the Prometheus metrics endpoint's port; 0 serves none
     * @param slots task slots: the job's parallelism
     * @param overrides further Flink options (key to value), applied last; they can override the above on purpose
     */
    public static LocalFlink start(String bindAddress, int restPort, int metricsPort, int slots,
            Map<String, String> overrides) throws Exception {
        Configuration conf = configuration(bindAddress, restPort, metricsPort, overrides);
        MiniCluster cluster = new MiniCluster(new MiniClusterConfiguration.Builder()
                .setConfiguration(conf)
                .setNumTaskManagers(1)
                .setNumSlotsPerTaskManager(slots)
                .build());
        try {
            cluster.start();
            return new LocalFlink(cluster, conf, cluster.getRestAddress().get(30, TimeUnit.SECONDS));
        } catch (Exception e) {
            cluster.close();
            throw e;
        }
    }

    /** The cluster's configuration: addresses, ports and the overrides; jobs built against it inherit it. */
    static Configuration configuration(String bindAddress, int restPort, int metricsPort,
            Map<String, String> overrides) {
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
        // The demo never runs uploaded jars: this removes the web UI's /jars endpoints. A REST client can still
        // submit a job graph with its jars (POST /jobs, what `flink run` does), so the bind address is the protection.
        c.set(WebOptions.SUBMIT_ENABLE, false);
        metricsReporter(c, bindAddress, metricsPort);
        c.addAll(Configuration.fromMap(overrides));
        return c;
    }

    /**
     * The one place where the metrics reporter plugs in: Flink's Prometheus mapping served on the bind address (the
     * stock reporter would listen on every interface), {@code http://127.0.0.1:9249/metrics} by default.
     */
    private static void metricsReporter(Configuration c, String bindAddress, int port) {
        if (port > 0) {
            c.addAll(PrometheusReporting.configuration(bindAddress, port));
        }
    }

    private static String clientAddress(String bindAddress) {
        // A wildcard bind is reachable through loopback too; clients cannot connect to 0.0.0.0 itself.
        return bindAddress.equals("0.0.0.0") || bindAddress.equals("::") ? LOOPBACK : bindAddress;
    }

    /** The REST API and web UI, e.g. http://127.0.0.1:8081. */
    public URI restAddress() {
        return restAddress;
    }

    /** An environment whose jobs carry this cluster's configuration (checkpointing options included). */
    public StreamExecutionEnvironment environment() {
        return new StreamExecutionEnvironment(new Configuration(configuration));
    }

    /** Submits what was built on {@code env} and returns once the cluster accepted it. */
    public JobID submit(StreamExecutionEnvironment env, String jobName) throws Exception {
        StreamGraph graph = env.getStreamGraph();
        graph.setJobName(jobName);
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

    @Override
    public void close() throws Exception {
        cluster.close();
    }
}

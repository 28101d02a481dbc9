package dev.seqscore.tools.metrics;

import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.flink.configuration.Configuration;

/**
 * Flink's Prometheus reporter (flink-metrics-prometheus) configured in one place, for the demo's and the tests'
 * MiniClusters: every metric of the JobManager, the TaskManagers and the job, including the job's own
 * ({@code dev.seqscore.metrics.JobMetrics}), served as Prometheus text on {@code http://host:port/metrics}.
 *
 * <p>A cluster takes the same keys in its {@code config.yaml} ({@link #entries}), with the reporter jar in
 * {@code plugins/metrics-prometheus/}; see the README's metrics section.
 *
 * <p>Flink 2.2.1's {@code PrometheusReporter} has a port option but no bind-address option: it listens on every
 * interface of the host. Local clusters here ({@link #configuration}) use {@link LoopbackPrometheusReporterFactory}
 * instead, the same mapping served on 127.0.0.1; on a cluster, firewall the port where that matters.
 */
public final class PrometheusReporting {
    /** The reporter's name in {@code metrics.reporter.<name>.*}. */
    public static final String REPORTER = "prom";
    public static final String FACTORY = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory";
    /** The reporter's own default, and the port Prometheus setups expect of Flink. */
    public static final int DEFAULT_PORT = 9249;

    private PrometheusReporting() {}

    /**
     * The configuration keys that enable the reporter on {@code port}: a single port, or a range such as
     * {@code 9250-9260} when several Flink processes share a host (each takes the first free port).
     */
    public static Map<String, String> entries(String port) {
        Map<String, String> e = new LinkedHashMap<>();
        e.put("metrics.reporter." + REPORTER + ".factory.class", FACTORY);
        e.put("metrics.reporter." + REPORTER + ".port", port);
        return e;
    }

    /**
     * A configuration enabling the reporter on {@code host:port} (the loopback variant), to merge into a local
     * cluster's configuration.
     */
    public static Configuration configuration(String host, int port) {
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("the Prometheus reporter port must be in 1..65535, got " + port);
        }
        Map<String, String> e = new LinkedHashMap<>();
        e.put("metrics.reporter." + REPORTER + ".factory.class", LoopbackPrometheusReporterFactory.class.getName());
        e.put("metrics.reporter." + REPORTER + "." + LoopbackPrometheusReporterFactory.HOST, host);
        e.put("metrics.reporter." + REPORTER + "." + LoopbackPrometheusReporterFactory.PORT, Integer.toString(port));
        return Configuration.fromMap(e);
    }

    /** {@link #configuration(String, int)} on 127.0.0.1. */
    public static Configuration configuration(int port) {
        return configuration("127.0.0.1", port);
    }

    /** Adds the reporter on {@code port} to {@code conf} and returns it. */
    public static Configuration addTo(Configuration conf, int port) {
        conf.addAll(configuration(port));
        return conf;
    }

    /** Where the reporter serves the metrics, for a scraper on the same host. */
    public static String scrapeUrl(int port) {
        return "http://127.0.0.1:" + port + "/metrics";
    }
}

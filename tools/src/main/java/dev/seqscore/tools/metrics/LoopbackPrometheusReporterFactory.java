package dev.seqscore.tools.metrics;

import io.prometheus.client.CollectorRegistry;
import io.prometheus.client.exporter.HTTPServer;
import java.io.IOException;
import java.lang.reflect.Field;
import java.net.InetSocketAddress;
import java.util.Properties;
import org.apache.flink.metrics.prometheus.AbstractPrometheusReporter;
import org.apache.flink.metrics.reporter.MetricReporter;
import org.apache.flink.metrics.reporter.MetricReporterFactory;

/**
 * Flink's Prometheus reporter, served on one address instead of every interface: Flink 2.2.1's own reporter has a
 * port option but no host option, and the demo must listen on loopback only. Options: {@code host} (default
 * 127.0.0.1) and {@code port} (default 9249).
 */
public final class LoopbackPrometheusReporterFactory implements MetricReporterFactory {
    public static final String HOST = "host";
    public static final String PORT = "port";

    @Override
    public MetricReporter createMetricReporter(Properties properties) {
        String host = properties.getProperty(HOST, "127.0.0.1");
        int port = Integer.parseInt(properties.getProperty(PORT, Integer.toString(PrometheusReporting.DEFAULT_PORT)));
        return new Reporter(new InetSocketAddress(host, port));
    }

    /** Flink's metric-to-Prometheus mapping, with the HTTP server bound where asked. */
    static final class Reporter extends AbstractPrometheusReporter {
        private final InetSocketAddress address;
        private HTTPServer server;

        Reporter(InetSocketAddress address) {
            this.address = address;
            try {
                server = new HTTPServer(address, registry(this), true);
            } catch (IOException e) {
                throw new IllegalStateException("cannot serve Prometheus metrics on " + address + ": " + e, e);
            }
        }

        /** The registry the base class fills is package-private; the mapping itself is Flink's, unchanged. */
        private static CollectorRegistry registry(AbstractPrometheusReporter reporter) {
            try {
                Field f = AbstractPrometheusReporter.class.getDeclaredField("registry");
                f.setAccessible(true);
                return (CollectorRegistry) f.get(reporter);
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("this flink-metrics-prometheus has no registry field", e);
            }
        }

        int port() {
            return server.getPort();
        }

        @Override
        public void close() {
            if (server != null) {
                server.stop();
            }
            super.close();
        }

        @Override
        public String toString() {
            return "LoopbackPrometheusReporter[" + address + "]";
        }
    }
}

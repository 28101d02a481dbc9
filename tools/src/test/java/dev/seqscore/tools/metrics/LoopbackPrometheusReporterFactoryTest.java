package dev.seqscore.tools.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import org.apache.flink.metrics.reporter.MetricReporter;
import org.junit.jupiter.api.Test;

/** The local clusters' reporter serves Flink's Prometheus mapping on 127.0.0.1 only, per the kernel's socket table. */
class LoopbackPrometheusReporterFactoryTest {

    @Test
    void servesMetricsOnLoopbackAndListensNowhereElse() throws Exception {
        Properties props = new Properties();
        props.setProperty(LoopbackPrometheusReporterFactory.PORT, "0");
        MetricReporter reporter = new LoopbackPrometheusReporterFactory().createMetricReporter(props);
        try {
            int port = ((LoopbackPrometheusReporterFactory.Reporter) reporter).port();
            HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + port + "/metrics")).build(), HttpResponse.BodyHandlers.ofString());

            // What it serves is Flink's mapping, checked against a real Prometheus by PrometheusDashboardITCase.
            assertThat(r.statusCode()).isEqualTo(200);
            assertThat(listeningAddresses(port)).isNotEmpty().allMatch(LoopbackPrometheusReporterFactoryTest::isLoopback,
                    "127.0.0.0/8, ::1 or ::ffff:127.x");
        } finally {
            reporter.close();
        }
    }

    /** A /proc/net/tcp{,6} address in the kernel's hex: IPv4 127/8, IPv6 ::1, or IPv4-mapped 127/8. */
    static boolean isLoopback(String hex) {
        return (hex.length() == 8 && hex.endsWith("7F"))
                || hex.equals("00000000000000000000000001000000")
                || (hex.length() == 32 && hex.startsWith("0000000000000000FFFF0000") && hex.endsWith("7F"));
    }

    /** Local addresses (hex, as the kernel writes them) of sockets listening on {@code port}, IPv4 and IPv6. */
    static List<String> listeningAddresses(int port) throws Exception {
        String hexPort = String.format(Locale.ROOT, ":%04X", port);
        List<String> out = new ArrayList<>();
        for (String table : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
            Path p = Path.of(table);
            if (!Files.isReadable(p)) {
                continue;
            }
            for (String line : Files.readAllLines(p)) {
                String[] f = line.trim().split("\\s+");
                if (f.length > 3 && f[1].endsWith(hexPort) && f[3].equals("0A")) {
                    out.add(f[1].substring(0, f[1].length() - hexPort.length()));
                }
            }
        }
        return out;
    }
}

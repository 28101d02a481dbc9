package dev.seqscore.tools.demo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.seqscore.options.OptionValues;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The demo as it runs (broker, MiniCluster, job, producer, Prometheus endpoint, started by the same code as
 * {@code bin/seqscore demo}) listens on loopback addresses only, and its web UI takes no jar uploads.
 */
class DemoSocketsITCase {
    private static final Duration DEADLINE = Duration.ofMinutes(3);

    @Test
    void theRunningDemoListensOnLoopbackOnly() throws Exception {
        assumeTrue(ListeningSockets.supported(), "needs Linux /proc to list this JVM's sockets");
        int metricsPort;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            metricsPort = s.getLocalPort();
        }
        OptionValues options = Demo.OPTIONS.parse("--source", "simulator", "--rate", "200", "--web-port", "0",
                "--kafka-port", "0", "--metrics-port", Integer.toString(metricsPort), "--sim-users", "20000",
                "--sim-sessions", "2", "--checkpoint-interval", "2s");
        try (DemoStack stack = DemoStack.start(options, System.out)) {
            JobHealthReporter health = new JobHealthReporter(stack.flink.restAddress(), stack.job.toString());
            JobHealth h = health.poll();
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            // Running with a completed checkpoint: sources, sinks and their Kafka transactions have all started.
            while (!(h.running() && h.completedCheckpoints() >= 1)) {
                assertThat(System.nanoTime()).as("demo job never checkpointed: %s", health.render(h))
                        .isLessThan(deadline);
                Thread.sleep(500); // poll interval of a deadline loop
                h = health.poll();
            }

            List<ListeningSockets.Listener> listeners = ListeningSockets.ofThisProcess();
            String bootstrap = stack.kafka.bootstrapServers();
            int kafkaPort = Integer.parseInt(bootstrap.substring(bootstrap.lastIndexOf(':') + 1));
            assertThat(listeners).extracting(ListeningSockets.Listener::port)
                    .contains(stack.flink.restAddress().getPort(), kafkaPort, metricsPort);
            assertThat(ListeningSockets.beyondLoopback(listeners)).as("all listeners: %s", listeners).isEmpty();

            HttpResponse<String> jars = HttpClient.newHttpClient().send(
                    HttpRequest.newBuilder(URI.create(stack.flink.restAddress() + "/jars")).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(jars.statusCode()).as("GET /jars: %s", jars.body()).isEqualTo(404);
        }
    }
}

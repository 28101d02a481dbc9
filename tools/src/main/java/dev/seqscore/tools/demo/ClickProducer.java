package dev.seqscore.tools.demo;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.registry.Framing;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Iterator;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Streams clicks into a Kafka topic as Avro (registry-framed with a schema id when one is given), keyed by user, at a
 * steady rate in wall-clock time, injecting a malformed record every so often to show the dead-letter path. Runs on
 * its own daemon thread until {@link #stop()}.
 */
final class ClickProducer implements AutoCloseable {
    private final String bootstrap;
    private final String topic;
    private final Iterator<ClickEvent> clicks;
    private final long rate;
    private final long badEvery;
    private final Integer schemaId;
    private final AtomicLong sent = new AtomicLong();
    private final AtomicLong malformed = new AtomicLong();
    private volatile boolean stopping;
    private volatile RuntimeException failure;
    private final Thread thread;

    ClickProducer(String bootstrap, String topic, Iterator<ClickEvent> clicks, long rate, long badEvery) {
        this(bootstrap, topic, clicks, rate, badEvery, null);
    }

    /** @param schemaId the registry id of ClickEvent's schema to frame values with; null for bare Avro */
    ClickProducer(String bootstrap, String topic, Iterator<ClickEvent> clicks, long rate, long badEvery,
            Integer schemaId) {
        this.schemaId = schemaId;
        this.bootstrap = bootstrap;
        this.topic = topic;
        this.clicks = clicks;
        this.rate = rate;
        this.badEvery = badEvery;
        this.thread = new Thread(this::run, "demo-producer");
        thread.setDaemon(true);
    }

    ClickProducer start() {
        thread.start();
        return this;
    }

    long sent() {
        return sent.get();
    }

    long malformed() {
        return malformed.get();
    }

    /** Why the producer stopped on its own, or null while it runs. */
    RuntimeException failure() {
        return failure;
    }

    private void run() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "20");
        // Larger batches: at tens of thousands of clicks per second the default 16 KB batches cost the broker CPU.
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, "262144");
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            long start = System.nanoTime();
            long n = 0;
            while (!stopping && clicks.hasNext()) {
                ClickEvent e = clicks.next();
                byte[] key = e.getUserId().getBytes(StandardCharsets.UTF_8);
                byte[] value = schemaId == null ? ClickEventAvro.encode(e)
                        : Framing.frame(schemaId, ClickEventAvro.encode(e));
                producer.send(new ProducerRecord<>(topic, key, value));
                n++;
                sent.incrementAndGet();
                if (badEvery > 0 && n % badEvery == 0) {
                    // A truncated record: what a buggy producer or a wrong serializer would send.
                    producer.send(new ProducerRecord<>(topic, key, Arrays.copyOf(value, value.length / 2)));
                    malformed.incrementAndGet();
                }
                long wait = start + n * 1_000_000_000L / rate - System.nanoTime();
                if (wait > 0) {
                    LockSupport.parkNanos(wait);
                }
            }
        } catch (RuntimeException e) {
            if (!stopping) {
                failure = e;
            }
        }
    }

    void stop() {
        stopping = true;
    }

    @Override
    public void close() throws InterruptedException {
        stop();
        thread.join(10_000);
    }
}

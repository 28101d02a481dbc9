package dev.seqscore.e2e.drill;

import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.offline.files.FileRecord;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Streams the drill's input into the clicks topic at a fixed rate, as Avro ClickEvents keyed by user, each to its
 * partition, from a thread of its own. The producer is idempotent with unbounded retries, so a broker restart delays
 * records but neither loses, duplicates nor reorders them. It records when each record was acknowledged, so that the
 * drill knows which input had reached Kafka at any moment.
 */
final class InputFeeder implements AutoCloseable {
    private final DrillInput input;
    private final String bootstrap;
    private final String topic;
    /** The schedule: record {@code fromIndex} is due at {@code fromNanos}, then one every 1/rate seconds. */
    private record Pace(int fromIndex, long fromNanos, double rate) {
        long due(int i) {
            return fromNanos + (long) ((i - fromIndex) * 1e9 / rate);
        }
    }

    private final AtomicReference<Pace> pace = new AtomicReference<>();
    private final double rate;
    private final AtomicLongArray ackedNanos;
    private final AtomicInteger acked = new AtomicInteger();
    private final AtomicInteger sent = new AtomicInteger();
    private final AtomicBoolean stop = new AtomicBoolean();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final Thread thread;

    InputFeeder(DrillInput input, String bootstrap, String topic, double rate) {
        this.input = input;
        this.bootstrap = bootstrap;
        this.topic = topic;
        this.rate = rate;
        this.ackedNanos = new AtomicLongArray(input.rows().size());
        this.thread = new Thread(this::run, "drill-input-feeder");
        this.thread.setDaemon(true);
    }

    void start() {
        thread.start();
    }

    private void run() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5);
        p.put(ProducerConfig.RETRIES_CONFIG, Integer.MAX_VALUE);
        // Long enough to ride out a broker restart without failing a record.
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, (int) Duration.ofMinutes(10).toMillis());
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, Duration.ofMinutes(10).toMillis());
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        pace.compareAndSet(null, new Pace(0, System.nanoTime(), rate));
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            int n = input.rows().size();
            for (int i = 0; i < n && !stop.get(); i++) {
                long wait;
                while ((wait = pace.get().due(i) - System.nanoTime()) > 0 && !stop.get()) {
                    LockSupport.parkNanos(Math.min(wait, 50_000_000L));
                }
                FileRecord r = input.rows().get(i);
                int index = i;
                // No record timestamp: the broker stamps it now, so retention never deletes 2017's events mid-drill.
                producer.send(new ProducerRecord<>(topic, input.partitions()[i],
                        r.event().getUserId().getBytes(StandardCharsets.UTF_8), ClickEventAvro.encode(r.event())),
                        (meta, e) -> {
                            if (e != null) {
                                failure.compareAndSet(null, e);
                            } else {
                                ackedNanos.set(index, System.nanoTime());
                                acked.incrementAndGet();
                            }
                        });
                sent.incrementAndGet();
            }
            producer.flush();
        } catch (Throwable t) {
            failure.compareAndSet(null, t);
        }
    }

    /** Fails the caller if a record could not be delivered. */
    void check() {
        Throwable t = failure.get();
        if (t != null) {
            throw new IllegalStateException("the input producer failed: " + t, t);
        }
    }

    int acked() {
        return acked.get();
    }

    /** Records handed to the producer so far: the next one is row {@code sent()}. */
    int sent() {
        return sent.get();
    }

    /** Records per second now. */
    double rate() {
        Pace p = pace.get();
        return p == null ? rate : p.rate();
    }

    int total() {
        return input.rows().size();
    }

    boolean done() {
        return acked.get() == input.rows().size();
    }

    /** When record {@code i} was acknowledged (nanoTime), or 0 if not yet. */
    long ackedAt(int i) {
        return ackedNanos.get(i);
    }

    /** Seconds of input still to send at the current rate. */
    double secondsLeft() {
        Pace p = pace.get();
        return (input.rows().size() - sent.get()) / (p == null ? rate : p.rate());
    }

    /** Sends the rest at {@code newRate}, from now on: once the injections are done, the drill need not wait. */
    void speedUp(double newRate) {
        pace.set(new Pace(sent.get(), System.nanoTime(), newRate));
    }

    @Override
    public void close() throws InterruptedException {
        stop.set(true);
        thread.join(30_000);
    }
}

package dev.seqscore.tools.bench;

import dev.seqscore.metrics.JobMetrics;
import java.util.concurrent.TimeUnit;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.SimpleCounter;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * JMH benchmark of what the scorer's metrics add to one ONNX Runtime call of {@code batch} rows: the same calls as
 * {@code BatchScoringOperator.flush} (two nanoTime reads, three histogram updates per call; one clock read per
 * batch; two histogram updates per row; one counter increment), on {@link JobMetrics}'s histograms. Run with
 * {@code -prof gc} to see the allocation per call.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class MetricsBenchmark {
    @Param({"1", "64"})
    public int batch;

    private Histogram callMicros;
    private Histogram eventMicros;
    private Histogram batchSize;
    private Histogram lag;
    private Histogram windowLength;
    private Counter scored;
    private long[] eventTimes;

    @Setup
    public void setUp() {
        UnregisteredMetricsGroup group = new UnregisteredMetricsGroup();
        callMicros = JobMetrics.histogram(group, JobMetrics.INFERENCE_CALL_MICROS);
        eventMicros = JobMetrics.histogram(group, JobMetrics.INFERENCE_EVENT_MICROS);
        batchSize = JobMetrics.histogram(group, JobMetrics.BATCH_SIZE);
        lag = JobMetrics.histogram(group, JobMetrics.EVENT_TIME_LAG_MS);
        windowLength = JobMetrics.histogram(group, JobMetrics.WINDOW_LENGTH);
        scored = new SimpleCounter();
        eventTimes = new long[batch];
        for (int i = 0; i < batch; i++) {
            eventTimes[i] = 1511658000_000L + i;
        }
    }

    @Benchmark
    public long metricsOfOneCall() {
        long started = System.nanoTime();
        long micros = (System.nanoTime() - started) / 1_000;
        callMicros.update(micros);
        eventMicros.update(micros / batch);
        batchSize.update(batch);
        long now = System.currentTimeMillis();
        for (int row = 0; row < batch; row++) {
            lag.update(now - eventTimes[row]);
            windowLength.update(50);
        }
        scored.inc(batch);
        return scored.getCount();
    }
}

package dev.seqscore.events;

import java.time.Duration;
import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;

/**
 * Bounded out-of-orderness watermarks that advance as soon as an event moves them, not only on the periodic tick.
 *
 * <p>Why: events wait in the scorer until the watermark passes them, so a watermark that lags by a tick adds that
 * tick to every alert's latency. And lateness becomes a property of the record order alone (an event is late if an
 * event more than the bound newer came before it in its partition), not of when the periodic timer happened to
 * fire, which makes it reproducible in replays and tests. Flink drops watermarks that do not advance, so the cost
 * is one watermark per advancing event.
 */
public final class EagerWatermarks<T> implements WatermarkGenerator<T> {
    private final long delayMs;
    private long maxTimestamp;
    private long lastEmitted = Long.MIN_VALUE;

    public EagerWatermarks(Duration maxOutOfOrderness) {
        this.delayMs = maxOutOfOrderness.toMillis();
        // Start so that the first watermark cannot underflow.
        this.maxTimestamp = Long.MIN_VALUE + delayMs + 1;
    }

    @Override
    public void onEvent(T event, long eventTimestamp, WatermarkOutput output) {
        if (eventTimestamp > maxTimestamp) {
            maxTimestamp = eventTimestamp;
            emit(output);
        }
    }

    @Override
    public void onPeriodicEmit(WatermarkOutput output) {
        emit(output);
    }

    private void emit(WatermarkOutput output) {
        long wm = maxTimestamp - delayMs - 1;
        if (wm > lastEmitted) {
            lastEmitted = wm;
            output.emitWatermark(new Watermark(wm));
        }
    }
}

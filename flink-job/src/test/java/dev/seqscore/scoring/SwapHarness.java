package dev.seqscore.scoring;

import static org.assertj.core.api.Assertions.fail;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.ModelEvent;
import dev.seqscore.events.InputRecord;
import dev.seqscore.lifecycle.ModelControl;
import dev.seqscore.testing.Clicks;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedTwoInputStreamOperatorTestHarness;
import org.apache.flink.util.OutputTag;

/**
 * {@link ScoringOperator} with its second input, the model control records, in a keyed two-input harness: clicks,
 * control records, the watermark until everything it passes is out, checkpoints as the runtime takes them.
 */
final class SwapHarness implements AutoCloseable {
    final ScoringSettings settings;
    final KeyedTwoInputStreamOperatorTestHarness<String, InputRecord, String, ScoredEvent> h;

    private SwapHarness(ScoringSettings settings, OperatorSubtaskState restore) throws Exception {
        this.settings = settings;
        h = new KeyedTwoInputStreamOperatorTestHarness<>(new ScoringOperator(settings), r -> r.userId,
                text -> "", Types.STRING, ScoringHarness.MAX_PARALLELISM, 1, 0);
        if (restore != null) {
            h.initializeState(restore);
        }
        h.open();
    }

    static SwapHarness open(ScoringSettings settings) throws Exception {
        return new SwapHarness(settings, null);
    }

    static SwapHarness restore(ScoringSettings settings, OperatorSubtaskState snapshot) throws Exception {
        return new SwapHarness(settings, snapshot);
    }

    ScoringOperator operator() {
        return (ScoringOperator) h.getOperator();
    }

    void send(Clicks.Builder c) throws Exception {
        h.processElement1(c.record(), c.millis());
    }

    void sendAll(List<Clicks.Builder> clicks) throws Exception {
        for (Clicks.Builder c : clicks) {
            send(c);
        }
    }

    void control(ModelControl c) throws Exception {
        control(c.toJson());
    }

    void control(String text) throws Exception {
        h.processElement2(text, Long.MIN_VALUE);
    }

    /** The watermark, then batching deadlines until the operator lets it through. */
    void watermark(long w) throws Exception {
        int before = h.getOutput().size();
        h.processWatermark1(new Watermark(w));
        for (int deadlines = 0; !watermarkOut(before, w); deadlines++) {
            if (deadlines == 100_000) {
                fail("the watermark %d was not let through after %d batching deadlines", w, deadlines);
            }
            h.setProcessingTime(h.getProcessingTime() + Math.max(1, settings.maxDelayMs()));
        }
    }

    private boolean watermarkOut(int from, long w) {
        int i = 0;
        for (Object o : h.getOutput()) {
            if (i++ >= from && o instanceof Watermark m && m.getTimestamp() == w) {
                return true;
            }
        }
        return false;
    }

    OperatorSubtaskState checkpoint(long id) throws Exception {
        h.prepareSnapshotPreBarrier(id);
        return h.snapshot(id, id);
    }

    List<ScoredEvent> scored() {
        return h.extractOutputValues();
    }

    List<Alert> alerts() {
        return side(ScoringOperator.ALERTS);
    }

    List<ModelEvent> modelEvents() {
        return side(ScoringOperator.MODEL_EVENTS);
    }

    List<ScoredEvent> shadowScores() {
        return side(ScoringOperator.SHADOW_SCORES);
    }

    private <T> List<T> side(OutputTag<T> tag) {
        var records = h.getSideOutput(tag);
        List<T> out = new ArrayList<>();
        if (records != null) {
            for (StreamRecord<T> r : records) {
                out.add(r.getValue());
            }
        }
        return out;
    }

    @Override
    public void close() throws Exception {
        h.close();
    }
}

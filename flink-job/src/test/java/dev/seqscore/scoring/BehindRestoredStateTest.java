package dev.seqscore.scoring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.events.DeadLetterReason;
import dev.seqscore.events.InputRecord;
import dev.seqscore.job.JobConfig;
import dev.seqscore.job.PipelineSettings;
import dev.seqscore.model.ModelBundle;
import java.time.Instant;
import java.util.List;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;

/**
 * After any restore the scorer's watermark starts anew, so an event earlier than its user's newest applied event is
 * not behind the watermark, yet cannot be appended to the user's window: at a warm start's seam (a live record whose
 * event time is before the user's newest bootstrapped event) or after a restart (a record that the old watermark had
 * already passed). It is dead-lettered as LATE_EVENT, as the old job would have done, instead of failing the job.
 */
class BehindRestoredStateTest {
    private static final long T0 = Instant.parse("2017-11-26T01:00:00Z").toEpochMilli();

    private static KeyedOneInputStreamOperatorTestHarness<String, InputRecord, ScoredEvent> harness()
            throws Exception {
        ScoringSettings s = PipelineSettings.builder(ModelBundle.packaged()).with(JobConfig.SCORE_BATCH, 1).build()
                .scoringSettings();
        return new KeyedOneInputStreamOperatorTestHarness<>(new ScoringOperator(s), r -> r.userId, Types.STRING, 128,
                1, 0);
    }

    private static StreamRecord<InputRecord> click(String user, long t) {
        ClickEvent e = ClickEvent.newBuilder().setUserId(user).setItemId("item-" + t).setCategoryId("c")
                .setEventType("view").setEventTime(Instant.ofEpochMilli(t)).build();
        return new StreamRecord<>(InputRecord.decoded(e, "clicks", 0, t, null), t);
    }

    @Test
    void anEventBeforeItsUsersNewestRestoredEventIsALateDeadLetterNotAFailure() throws Exception {
        OperatorSubtaskState snapshot;
        try (var h = harness()) {
            h.open();
            h.processElement(click("alice", T0));
            h.processElement(click("alice", T0 + 60_000));
            h.processWatermark(new Watermark(T0 + 120_000));
            snapshot = h.snapshot(1, 1);
        }
        try (var h = harness()) {
            h.initializeState(snapshot);
            h.open();
            h.processElement(click("alice", T0 + 30_000));
            h.processElement(click("alice", T0 + 90_000));
            h.processWatermark(new Watermark(T0 + 180_000));
            List<DeadLetter> late = List.copyOf(h.getSideOutput(ScoringOperator.LATE).stream()
                    .map(StreamRecord::getValue).toList());
            assertThat(late).singleElement().satisfies(d -> {
                assertThat(d.getReason()).isEqualTo(DeadLetterReason.LATE_EVENT.name());
                assertThat(d.getDetail()).contains("before the newest event of user alice");
            });
            assertThat(h.extractOutputValues()).singleElement()
                    .satisfies(s -> assertThat(s.eventTime).isEqualTo(T0 + 90_000));
        }
    }
}

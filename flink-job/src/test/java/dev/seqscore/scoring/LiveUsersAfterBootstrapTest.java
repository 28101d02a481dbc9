package dev.seqscore.scoring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.InputRecord;
import dev.seqscore.job.JobConfig;
import dev.seqscore.job.PipelineSettings;
import dev.seqscore.metrics.LiveUsers;
import dev.seqscore.model.ModelBundle;
import java.lang.reflect.Field;
import java.time.Instant;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.Test;

/**
 * The users-with-state gauge after a warm start: a savepoint written by the bootstrap has the users' values but not
 * the gauge's union state, so the scorer counts the restored users once; a savepoint of the job (with the union
 * state) restores the count as before, not counted twice.
 */
class LiveUsersAfterBootstrapTest {
    private static final long T0 = Instant.parse("2017-11-26T01:00:00Z").toEpochMilli();

    private static ScoringSettings settings() {
        return PipelineSettings.builder(ModelBundle.packaged()).with(JobConfig.SCORE_BATCH, 1).build()
                .scoringSettings();
    }

    private static KeyedOneInputStreamOperatorTestHarness<String, InputRecord, ScoredEvent> harness()
            throws Exception {
        return new KeyedOneInputStreamOperatorTestHarness<>(new ScoringOperator(settings()), r -> r.userId,
                Types.STRING, 128, 1, 0);
    }

    private static StreamRecord<InputRecord> click(String user, long t) {
        ClickEvent e = ClickEvent.newBuilder().setUserId(user).setItemId("item-" + t).setCategoryId("c")
                .setEventType("view").setEventTime(Instant.ofEpochMilli(t)).build();
        return new StreamRecord<>(InputRecord.decoded(e, "clicks", 0, t, null), t);
    }

    private static long liveUsers(KeyedOneInputStreamOperatorTestHarness<String, InputRecord, ScoredEvent> h)
            throws Exception {
        Field f = ScoringOperator.class.getDeclaredField("liveUsers");
        f.setAccessible(true);
        return ((LiveUsers) f.get(h.getOperator())).count();
    }

    @Test
    void restoredUsersAreCountedOnceWhenTheSavepointHasNoGaugeState() throws Exception {
        OperatorSubtaskState snapshot;
        try (var h = harness()) {
            h.open();
            for (String user : new String[] {"alice", "bob", "carol"}) {
                h.processElement(click(user, T0));
                h.processElement(click(user, T0 + 60_000));
            }
            h.processWatermark(new Watermark(T0 + 120_000));
            assertThat(liveUsers(h)).isEqualTo(3);
            snapshot = h.snapshot(1, 1);
        }
        // What the State Processor API bootstrap writes: keyed state (values and timers), no operator state.
        OperatorSubtaskState keyedOnly = OperatorSubtaskState.builder()
                .setManagedKeyedState(snapshot.getManagedKeyedState()).build();
        try (var h = harness()) {
            h.initializeState(keyedOnly);
            h.open();
            assertThat(liveUsers(h)).isEqualTo(3);
            h.processElement(click("dave", T0 + 180_000));
            h.processWatermark(new Watermark(T0 + 240_000));
            assertThat(liveUsers(h)).isEqualTo(4);
        }
        try (var h = harness()) {
            h.initializeState(snapshot);
            h.open();
            assertThat(liveUsers(h)).isEqualTo(3);
        }
    }
}

package dev.seqscore.scoring;

import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.BOB;
import static dev.seqscore.testing.Clicks.T0;
import static dev.seqscore.testing.Clicks.T0_PLUS_10M;
import static dev.seqscore.testing.Clicks.T0_PLUS_1H;
import static dev.seqscore.testing.Clicks.T0_PLUS_1M;
import static dev.seqscore.testing.Clicks.T0_PLUS_1S;
import static dev.seqscore.testing.Clicks.T0_PLUS_2H;
import static dev.seqscore.testing.Clicks.T0_PLUS_2M;
import static dev.seqscore.testing.Clicks.T0_PLUS_2S;
import static dev.seqscore.testing.Clicks.T0_PLUS_30M;
import static dev.seqscore.testing.Clicks.T0_PLUS_3M;
import static dev.seqscore.testing.Clicks.T0_PLUS_5M;
import static dev.seqscore.testing.Clicks.click;
import static dev.seqscore.testing.Clicks.ms;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.events.InputRecord;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.reasons.Reason;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.model.OnnxScorer;
import dev.seqscore.testing.Clicks;
import dev.seqscore.testing.RepoPaths;
import dev.seqscore.features.Fnv1a64;
import dev.seqscore.features.PackedWindow;
import dev.seqscore.features.WindowEvent;
import dev.seqscore.features.WindowRule;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.Collectors;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.state.rocksdb.EmbeddedRocksDBStateBackend;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The keyed scoring operator in a harness, on the committed model bundle: events wait for the watermark and are
 * scored in event-time order whatever the arrival order; the window is capped by count and by horizon; exact
 * duplicates are dropped; events at or behind the watermark go to the LATE side output with their origin; an
 * event-time timer at newest + H leaves no state and no timers behind; the processing-time TTL backstop forgets a
 * stalled user's window; every score equals an independent computation ({@link WindowRule#windowEndingAt} over the
 * user's whole history, {@link FeatureEncoder}, {@link OnnxScorer} on a batch of one), bit for bit at batch size 1;
 * and ready events of many users share one model call, flushed when full, on the latency deadline and before a
 * checkpoint barrier, with the watermark held behind them.
 */
class BatchScoringOperatorTest {
    /**
     * ONNX Runtime may pick different kernels for a batch of k rows than for one row, so the operator's batched
     * scores can differ from the reference in the last bits; anything beyond that is a different window.
     */
    private static final float SCORE_TOLERANCE = 1e-5f;
    private static final long ONE_HOUR = Duration.ofHours(1).toMillis();
    private static final Duration NO_TTL = Duration.ZERO;
    private static final Duration MAX_DELAY = Duration.ofMillis(5);

    private static ModelBundle bundle;
    private static ModelSpec spec;
    private static OnnxScorer referenceScorer;
    private static FeatureEncoder referenceEncoder;

    private KeyedOneInputStreamOperatorTestHarness<String, InputRecord, ScoredEvent> harness;

    @BeforeAll
    static void loadModel() {
        bundle = ModelBundle.load(RepoPaths.defaultModel());
        spec = bundle.spec();
        referenceScorer = new OnnxScorer(bundle);
        referenceEncoder = new FeatureEncoder(spec);
    }

    @AfterAll
    static void closeModel() {
        if (referenceScorer != null) {
            referenceScorer.close();
        }
    }

    @AfterEach
    void closeHarness() throws Exception {
        if (harness != null) {
            harness.close();
        }
    }

    private static KeyedOneInputStreamOperatorTestHarness<String, InputRecord, ScoredEvent> open(
            int maxEvents, long horizonMs, Duration ttl, int maxBatch) throws Exception {
        var h = new KeyedOneInputStreamOperatorTestHarness<>(
                new BatchScoringOperator(bundle, maxEvents, horizonMs, ttl, 1, maxBatch, MAX_DELAY), r -> r.userId,
                Types.STRING);
        h.open();
        return h;
    }

    private void openWithModelWindow() throws Exception {
        harness = open(spec.maxEvents(), spec.horizonMs(), NO_TTL, 64);
    }

    private void send(Clicks.Builder c) throws Exception {
        harness.processElement(c.record(), c.millis());
    }

    /** The watermark, then the latency deadline passes, so whatever became ready is scored and emitted. */
    private void watermark(long w) throws Exception {
        harness.processWatermark(w);
        harness.setProcessingTime(harness.getProcessingTime() + MAX_DELAY.toMillis());
    }

    private List<ScoredEvent> scored() {
        return harness.extractOutputValues();
    }

    private static List<Instant> times(List<ScoredEvent> out) {
        return out.stream().map(s -> Instant.ofEpochMilli(s.eventTime)).collect(Collectors.toList());
    }

    // ---------------------------------------------------------------- ordering

    @Test
    void nothingIsScoredBeforeTheWatermarkPassesTheEvent() throws Exception {
        openWithModelWindow();
        send(click(ALICE).at(T0));
        send(click(ALICE).at(T0_PLUS_1M));

        assertThat(scored()).isEmpty();
        assertThat(harness.numEventTimeTimers()).isEqualTo(2);

        watermark(ms(T0_PLUS_1M) - 1);
        assertThat(times(scored())).containsExactly(T0);

        watermark(ms(T0_PLUS_1M));
        assertThat(times(scored())).containsExactly(T0, T0_PLUS_1M);
    }

    @Test
    void outOfOrderArrivalsAreScoredInEventTimeOrder() throws Exception {
        openWithModelWindow();
        List<Clicks.Builder> history = List.of(
                click(ALICE).type("view").item("i1").at(T0),
                click(ALICE).type("cart").item("i1").at(T0_PLUS_1M),
                click(ALICE).type("view").item("i2").at(T0_PLUS_2M),
                click(ALICE).type("buy").item("i1").at(T0_PLUS_3M));
        for (int i : new int[] {2, 0, 3, 1}) {
            send(history.get(i));
        }

        watermark(ms(T0_PLUS_3M));

        List<ScoredEvent> out = scored();
        assertThat(times(out)).containsExactly(T0, T0_PLUS_1M, T0_PLUS_2M, T0_PLUS_3M);
        assertThat(out).extracting(s -> s.windowLength).containsExactly(1, 2, 3, 4);
        assertScoresMatchReference(history, out, spec.maxEvents(), spec.horizonMs());
    }

    @Test
    void outputCarriesTheEventTimeAsTimestamp() throws Exception {
        openWithModelWindow();
        send(click(ALICE).at(T0_PLUS_1M));
        send(click(ALICE).at(T0));

        watermark(ms(T0_PLUS_1M));

        List<StreamRecord<? extends ScoredEvent>> out = harness.extractOutputStreamRecords();
        assertThat(out).extracting(StreamRecord::getTimestamp).containsExactly(ms(T0), ms(T0_PLUS_1M));
    }

    @Test
    void eventsWithTheSameTimeKeepTheirArrivalOrder() throws Exception {
        openWithModelWindow();
        List<Clicks.Builder> history = List.of(
                click(ALICE).item("first").at(T0),
                click(ALICE).item("second").at(T0),
                click(ALICE).item("third").at(T0));
        history.forEach(this::sendUnchecked);

        watermark(ms(T0));

        assertThat(scored()).extracting(s -> s.itemId).containsExactly("first", "second", "third");
        assertScoresMatchReference(history, scored(), spec.maxEvents(), spec.horizonMs());
    }

    @Test
    void scoredEventKeepsTheClickAndItsOrigin() throws Exception {
        openWithModelWindow();
        send(click(ALICE).type("cart").item("i7").at(T0).from("clicks", 3, 99L));

        watermark(ms(T0));

        ScoredEvent s = scored().get(0);
        assertThat(s.userId).isEqualTo(ALICE);
        assertThat(s.eventType).isEqualTo("cart");
        assertThat(s.itemId).isEqualTo("i7");
        assertThat(s.eventTime).isEqualTo(ms(T0));
        assertThat(s.sourceTopic).isEqualTo("clicks");
        assertThat(s.sourcePartition).isEqualTo(3);
        assertThat(s.sourceOffset).isEqualTo(99L);
        assertThat(s.scores).hasSize(spec.outputs().size());
        for (float score : s.scores) {
            assertThat(score).isBetween(0f, 1f);
        }
    }

    // ---------------------------------------------------------------- window

    @Test
    void windowIsCappedAtMaxEvents() throws Exception {
        int smallN = 3;
        harness = open(smallN, spec.horizonMs(), NO_TTL, 64);
        List<Clicks.Builder> history = new ArrayList<>();
        for (int i = 0; i < smallN + 3; i++) {
            history.add(click(ALICE).item("i" + i).at(T0.plusSeconds(i)));
        }
        history.forEach(this::sendUnchecked);

        watermark(ms(T0.plusSeconds(smallN + 3)));

        assertThat(scored()).extracting(s -> s.windowLength).containsExactly(1, 2, 3, 3, 3, 3);
        assertScoresMatchReference(history, scored(), smallN, spec.horizonMs());
    }

    @Test
    void eventsOutsideTheHorizonOfTheNewOneAreEvicted() throws Exception {
        harness = open(spec.maxEvents(), ONE_HOUR, NO_TTL, 64);
        List<Clicks.Builder> history = List.of(
                click(ALICE).item("a").at(T0),
                click(ALICE).item("b").at(T0_PLUS_30M),
                // T0 is exactly H before: out (the contract keeps t_e - t_i < H).
                click(ALICE).item("c").at(T0_PLUS_1H),
                click(ALICE).item("d").at(T0_PLUS_2H));
        history.forEach(this::sendUnchecked);

        watermark(ms(T0_PLUS_2H));

        assertThat(scored()).extracting(s -> s.windowLength).containsExactly(1, 2, 2, 1);
        assertScoresMatchReference(history, scored(), spec.maxEvents(), ONE_HOUR);
    }

    @Test
    void windowsAreKeptPerUser() throws Exception {
        openWithModelWindow();
        send(click(ALICE).at(T0));
        send(click(BOB).at(T0_PLUS_1S));
        send(click(ALICE).item("i2").at(T0_PLUS_2S));

        watermark(ms(T0_PLUS_2S));

        assertThat(scored()).extracting(s -> s.userId + ":" + s.windowLength)
                .containsExactly(ALICE + ":1", BOB + ":1", ALICE + ":2");
    }

    @Test
    void exactDuplicatesAreDropped() throws Exception {
        openWithModelWindow();
        send(click(ALICE).type("cart").item("i1").at(T0).offset(1));
        send(click(ALICE).type("cart").item("i1").at(T0).offset(2));
        // Same time, other item or type: not a duplicate.
        send(click(ALICE).type("cart").item("i2").at(T0).offset(3));
        send(click(ALICE).type("view").item("i1").at(T0).offset(4));

        watermark(ms(T0));

        assertThat(scored()).extracting(s -> s.sourceOffset).containsExactly(1L, 3L, 4L);
        assertThat(scored()).extracting(s -> s.windowLength).containsExactly(1, 2, 3);
    }

    @Test
    void duplicateArrivingInALaterWatermarkRoundIsStillDropped() throws Exception {
        // Same event time, but the watermark moved in between without passing it.
        openWithModelWindow();
        send(click(ALICE).item("i1").at(T0_PLUS_1M).offset(1));
        watermark(ms(T0));
        send(click(ALICE).item("i1").at(T0_PLUS_1M).offset(2));

        watermark(ms(T0_PLUS_1M));

        assertThat(scored()).extracting(s -> s.sourceOffset).containsExactly(1L);
    }

    // ---------------------------------------------------------------- lateness

    @Test
    void eventAtOrBehindTheWatermarkGoesToTheLateOutputWithItsOrigin() throws Exception {
        openWithModelWindow();
        harness.setProcessingTime(ms(T0_PLUS_10M));
        send(click(ALICE).at(T0_PLUS_1M));
        watermark(ms(T0_PLUS_1M));
        int stateBefore = harness.numKeyedStateEntries();
        int timersBefore = harness.numEventTimeTimers();

        Clicks.Builder atWatermark = click(ALICE).type("cart").item("late-1").at(T0_PLUS_1M).from("clicks", 2, 40L);
        Clicks.Builder behind = click(ALICE).type("buy").item("late-2").at(T0).from("clicks", 2, 41L);
        send(atWatermark);
        send(behind);

        assertThat(scored()).hasSize(1);
        List<DeadLetter> late = harness.getSideOutput(BatchScoringOperator.LATE).stream()
                .map(StreamRecord::getValue).collect(Collectors.toList());
        assertThat(late).hasSize(2);
        assertThat(late).extracting(d -> d.getReason()).containsOnly("LATE_EVENT");
        assertThat(late).extracting(d -> d.getSourceTopic(), d -> d.getSourcePartition(), d -> d.getSourceOffset())
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("clicks", 2, 40L),
                        org.assertj.core.groups.Tuple.tuple("clicks", 2, 41L));
        assertThat(late.get(0).getDetail()).contains(Long.toString(ms(T0_PLUS_1M)));
        assertThat(late.get(0).getRecordedAt()).isEqualTo(T0_PLUS_10M.plus(MAX_DELAY));
        assertThat(ClickEventAvro.decode(bytes(late.get(0).getRaw()))).isEqualTo(atWatermark.event());
        assertThat(ClickEventAvro.decode(bytes(late.get(1).getRaw()))).isEqualTo(behind.event());
        // A late event must not change the user's state nor schedule anything.
        assertThat(harness.numKeyedStateEntries()).isEqualTo(stateBefore);
        assertThat(harness.numEventTimeTimers()).isEqualTo(timersBefore);
    }

    @Test
    void lateEventDoesNotChangeLaterScores() throws Exception {
        openWithModelWindow();
        List<Clicks.Builder> history = List.of(click(ALICE).item("a").at(T0), click(ALICE).item("b").at(T0_PLUS_2M));
        send(history.get(0));
        watermark(ms(T0_PLUS_1M));
        send(click(ALICE).item("late").at(T0_PLUS_1M));
        send(history.get(1));

        watermark(ms(T0_PLUS_2M));

        assertThat(scored()).extracting(s -> s.itemId).containsExactly("a", "b");
        assertScoresMatchReference(history, scored(), spec.maxEvents(), spec.horizonMs());
    }

    // ---------------------------------------------------------------- state lifetime

    @Test
    void stateAndTimersAreGoneOnceTheWatermarkPassesNewestPlusHorizon() throws Exception {
        harness = open(spec.maxEvents(), ONE_HOUR, NO_TTL, 64);
        send(click(ALICE).at(T0));
        send(click(ALICE).item("i2").at(T0_PLUS_1M));
        send(click(BOB).at(T0_PLUS_2M));
        assertThat(harness.numKeyedStateEntries()).as("pending events").isEqualTo(2);

        watermark(ms(T0_PLUS_2M));
        assertThat(scored()).hasSize(3);
        assertThat(harness.numKeyedStateEntries()).as("windows").isEqualTo(2);
        assertThat(harness.numEventTimeTimers()).as("one cleanup timer per window").isEqualTo(2);

        // Alice's first event is out of every future window, her second is not: keep her window.
        watermark(ms(T0_PLUS_1H));
        assertThat(harness.numKeyedStateEntries()).isEqualTo(2);

        watermark(ms(T0_PLUS_1M) + ONE_HOUR);
        assertThat(harness.numKeyedStateEntries()).as("only Bob's window").isEqualTo(1);

        watermark(ms(T0_PLUS_2M) + ONE_HOUR);
        assertThat(harness.numKeyedStateEntries()).isZero();
        assertThat(harness.numEventTimeTimers()).isZero();
    }

    @Test
    void aWatermarkJumpPastTheHorizonAppliesWaitingEventsBeforeItClearsTheWindow() throws Exception {
        // The cleanup time of the first window (T0 + 1h) and the second event (T0 + 30m) become due in one round:
        // the event must still see the first one.
        harness = open(spec.maxEvents(), ONE_HOUR, NO_TTL, 64);
        send(click(ALICE).item("a").at(T0));
        watermark(ms(T0));
        send(click(ALICE).item("b").at(T0_PLUS_30M));

        watermark(ms(T0_PLUS_2H));

        assertThat(scored()).extracting(s -> s.windowLength).containsExactly(1, 2);
        assertThat(harness.numKeyedStateEntries()).isZero();
        assertThat(harness.numEventTimeTimers()).isZero();
    }

    @Test
    void userReturningAfterCleanupStartsAFreshWindow() throws Exception {
        harness = open(spec.maxEvents(), ONE_HOUR, NO_TTL, 64);
        send(click(ALICE).at(T0));
        watermark(ms(T0_PLUS_1H));
        assertThat(harness.numKeyedStateEntries()).isZero();

        send(click(ALICE).item("back").at(T0_PLUS_2H));
        watermark(ms(T0_PLUS_2H));

        assertThat(scored()).extracting(s -> s.windowLength).containsExactly(1, 1);
    }

    @Test
    void ttlBackstopForgetsTheWindowOfAUserWhoseWatermarkStalled() throws Exception {
        Duration ttl = Duration.ofHours(1);
        harness = open(spec.maxEvents(), spec.horizonMs(), ttl, 64);
        harness.setStateTtlProcessingTime(0);
        send(click(ALICE).at(T0));
        watermark(ms(T0));

        // Within the TTL the window is still there...
        harness.setStateTtlProcessingTime(ttl.toMillis() - 1);
        send(click(ALICE).item("i2").at(T0_PLUS_1M));
        watermark(ms(T0_PLUS_1M));
        // ...and is rewritten by that event, so the TTL counts again from there.
        harness.setStateTtlProcessingTime(2 * ttl.toMillis());
        send(click(ALICE).item("i3").at(T0_PLUS_2M));
        watermark(ms(T0_PLUS_2M));

        assertThat(scored()).extracting(s -> s.windowLength).containsExactly(1, 2, 1);
    }

    @Test
    void eventsWaitingForTheWatermarkOutliveTheTtlAndAreScoredWhenItMoves() throws Exception {
        Duration ttl = Duration.ofHours(1);
        harness = open(spec.maxEvents(), spec.horizonMs(), ttl, 64);
        harness.setStateTtlProcessingTime(0);
        send(click(ALICE).at(T0));
        send(click(ALICE).item("i2").at(T0_PLUS_1M));
        // Traffic stops for longer than the TTL before the watermark passes the waiting events.
        harness.setStateTtlProcessingTime(3 * ttl.toMillis());
        watermark(ms(T0_PLUS_1M));

        assertThat(scored()).extracting(s -> s.windowLength).containsExactly(1, 2);
    }

    // ---------------------------------------------------------------- scores

    @Test
    void scoresEqualAnIndependentComputationOverTheWholeHistory() throws Exception {
        // Small batches, so that the operator flushes mid-round as well as at its end.
        harness = open(spec.maxEvents(), spec.horizonMs(), NO_TTL, 3);
        Random random = new Random(42);
        List<String> types = spec.vocabulary();
        List<Clicks.Builder> alice = new ArrayList<>();
        List<Clicks.Builder> bob = new ArrayList<>();
        Instant t = T0;
        for (int i = 0; i < 70; i++) {
            // Gaps from 0 (same time stamp) to hours, so that count, horizon and session features all vary.
            t = t.plusSeconds(random.nextInt(4) == 0 ? 0 : random.nextInt(2 * 3600));
            String user = random.nextBoolean() ? ALICE : BOB;
            Clicks.Builder c = click(user).type(types.get(random.nextInt(types.size())))
                    .item("i" + random.nextInt(8)).category("c" + random.nextInt(3)).at(t).offset(i);
            (user.equals(ALICE) ? alice : bob).add(c);
            send(c);
            if (random.nextInt(5) == 0) {
                watermark(ms(t) - 1);
            }
        }
        watermark(ms(t));

        List<ScoredEvent> out = scored();
        assertScoresMatchReference(withoutDuplicates(alice), forUser(out, ALICE), spec.maxEvents(),
                spec.horizonMs());
        assertScoresMatchReference(withoutDuplicates(bob), forUser(out, BOB), spec.maxEvents(), spec.horizonMs());
    }

    @Test
    void shorterWindowIsScoredLikeTheSameRuleWithThatLength() throws Exception {
        int smallN = 4;
        harness = open(smallN, ONE_HOUR, NO_TTL, 64);
        List<Clicks.Builder> history = new ArrayList<>();
        Instant[] at = {T0, T0_PLUS_1M, T0_PLUS_2M, T0_PLUS_3M, T0_PLUS_5M, T0_PLUS_10M, T0_PLUS_30M, T0_PLUS_1H,
            T0_PLUS_1H.plusSeconds(1), T0_PLUS_2H};
        for (int i = 0; i < at.length; i++) {
            history.add(click(ALICE).type(i % 3 == 0 ? "cart" : "view").item("i" + (i % 4)).at(at[i]));
        }
        history.forEach(this::sendUnchecked);

        watermark(ms(T0_PLUS_2H));

        assertThat(scored()).hasSize(at.length);
        assertThat(scored()).allSatisfy(s -> assertThat(s.windowLength).isBetween(1, smallN));
        assertScoresMatchReference(history, scored(), smallN, ONE_HOUR);
    }

    @Test
    void manyReadyEventsAreScoredAcrossSeveralBatches() throws Exception {
        // Seven events of one user at one instant become ready together; a batch holds three.
        harness = open(spec.maxEvents(), spec.horizonMs(), NO_TTL, 3);
        List<Clicks.Builder> history = new ArrayList<>();
        for (int i = 0; i < 7; i++) {
            history.add(click(ALICE).type(i % 2 == 0 ? "view" : "cart").item("i" + i).at(T0).offset(i));
        }
        history.forEach(this::sendUnchecked);
        // A duplicate in the middle of a batch must not shift the rows of the events after it.
        send(click(ALICE).type("view").item("i2").at(T0).offset(99));

        watermark(ms(T0));

        assertThat(scored()).extracting(s -> s.sourceOffset).containsExactly(0L, 1L, 2L, 3L, 4L, 5L, 6L);
        assertScoresMatchReference(history, scored(), spec.maxEvents(), spec.horizonMs());
    }

    // ---------------------------------------------------------------- recovery

    @Test
    void pendingEventsWindowsAndTimersSurviveACheckpointRestore() throws Exception {
        harness = open(spec.maxEvents(), ONE_HOUR, NO_TTL, 64);
        List<Clicks.Builder> history = List.of(
                click(ALICE).item("a").at(T0),
                click(ALICE).item("b").at(T0_PLUS_1M),
                click(ALICE).item("c").at(T0_PLUS_2M));
        send(history.get(0));
        send(history.get(1));
        watermark(ms(T0));
        // Snapshot with one event scored (window of 1) and one still waiting for the watermark.
        var snapshot = harness.snapshot(1L, ms(T0));
        List<ScoredEvent> before = new ArrayList<>(scored());
        harness.close();

        harness = new KeyedOneInputStreamOperatorTestHarness<>(
                new BatchScoringOperator(bundle, spec.maxEvents(), ONE_HOUR, NO_TTL, 1, 64, MAX_DELAY), r -> r.userId,
                Types.STRING);
        harness.initializeState(snapshot);
        harness.open();
        send(history.get(2));
        watermark(ms(T0_PLUS_2M));

        List<ScoredEvent> all = new ArrayList<>(before);
        all.addAll(scored());
        assertThat(all).extracting(s -> s.windowLength).containsExactly(1, 2, 3);
        assertScoresMatchReference(history, all, spec.maxEvents(), ONE_HOUR);
        // The restored cleanup timers still clear the window.
        watermark(ms(T0_PLUS_2M) + ONE_HOUR);
        assertThat(harness.numKeyedStateEntries()).isZero();
        assertThat(harness.numEventTimeTimers()).isZero();
    }

    // ---------------------------------------------------------------- reasons

    private static KeyedOneInputStreamOperatorTestHarness<String, InputRecord, ScoredEvent> openExplaining(
            int maxBatch, double[] explainAt) throws Exception {
        var h = new KeyedOneInputStreamOperatorTestHarness<>(new BatchScoringOperator(bundle, spec.maxEvents(),
                spec.horizonMs(), NO_TTL, 1, maxBatch, MAX_DELAY, explainAt, 3), r -> r.userId, Types.STRING);
        h.open();
        return h;
    }

    private List<ScoredEvent> scoreHistory(double[] explainAt, int maxBatch, List<Clicks.Builder> history)
            throws Exception {
        harness = openExplaining(maxBatch, explainAt);
        history.forEach(this::sendUnchecked);
        watermark(history.get(history.size() - 1).millis());
        List<ScoredEvent> out = scored();
        harness.close();
        harness = null;
        return out;
    }

    @Test
    void onlyEventsAtAnExplainThresholdCarryReasons() throws Exception {
        List<Clicks.Builder> history = randomHistory(new Random(11), 30, ALICE);
        List<ScoredEvent> base = scoreHistory(null, 64, history);
        // Halfway through the distinct purchase scores this history produced, so some rows reach it and some not.
        double[] purchase = base.stream().mapToDouble(s -> s.scores[0]).distinct().sorted().toArray();
        assertThat(purchase.length).as("distinct purchase scores").isGreaterThan(1);
        double threshold = purchase[purchase.length / 2];

        List<ScoredEvent> out = scoreHistory(new double[] {threshold, 1.0}, 64, history);

        assertThat(base).allSatisfy(s -> assertThat(s.reasons).isNull());
        assertThat(out).hasSameSizeAs(base);
        assertThat(out).filteredOn(s -> s.scores[0] >= threshold).isNotEmpty()
                .allSatisfy(s -> assertThat(s.reasons).isNotEmpty());
        assertThat(out).filteredOn(s -> s.scores[0] < threshold).isNotEmpty()
                .allSatisfy(s -> assertThat(s.reasons).isNull());
        for (int i = 0; i < out.size(); i++) {
            assertThat(out.get(i).scores).as("reasons do not change scores").containsExactly(base.get(i).scores);
        }
    }

    @Test
    void reasonsOfABatchedCallEqualThoseOfOneEventAtATime() throws Exception {
        List<Clicks.Builder> history = randomHistory(new Random(5), 25, ALICE);
        double[] everyEvent = {0.0, 0.0};

        List<ScoredEvent> batched = scoreHistory(everyEvent, 64, history);
        List<ScoredEvent> single = scoreHistory(everyEvent, 1, history);

        assertThat(batched).hasSameSizeAs(single);
        for (int i = 0; i < batched.size(); i++) {
            Reason[] a = batched.get(i).reasons;
            Reason[] b = single.get(i).reasons;
            assertThat(a).extracting(r -> r.output + ":" + r.group)
                    .containsExactlyElementsOf(Arrays.stream(b).map(r -> r.output + ":" + r.group).toList());
            for (int k = 0; k < a.length; k++) {
                assertThat(a[k].drop).isCloseTo(b[k].drop, within(SCORE_TOLERANCE * 2));
                assertThat(a[k].text).isEqualTo(b[k].text);
            }
        }
    }

    @Test
    void explainThresholdsMustMatchTheOutputs() {
        assertThatThrownBy(() -> new BatchScoringOperator(bundle, spec.maxEvents(), spec.horizonMs(), NO_TTL, 1, 64,
                MAX_DELAY, new double[] {0.5}, 3)).hasMessageContaining("1 explain thresholds for 2 model outputs");
    }

    // ---------------------------------------------------------------- packed window state

    @Test
    void eachUserIsOnePackedValueOfAtMostAHeaderAndNSlots() throws Exception {
        int smallN = 5;
        harness = open(smallN, spec.horizonMs(), NO_TTL, 64);
        for (int i = 0; i < 12; i++) {
            send(click(ALICE).item("i" + i).at(T0.plusSeconds(i)));
            send(click(BOB).item("i" + i).at(T0.plusSeconds(i)));
        }
        watermark(ms(T0.plusSeconds(12)));

        assertThat(scored()).hasSize(24);
        assertThat(harness.numKeyedStateEntries()).as("one window per user, nothing pending").isEqualTo(2);
        PackedWindow alice = new PackedWindow(smallN, spec.horizonMs(), spec.vocabulary().size())
                .wrap(storedWindow(ALICE));
        assertThat(alice.bytes()).hasSize(PackedWindow.HEADER_BYTES + smallN * PackedWindow.COMPACT_SLOT_BYTES);
        assertThat(alice.size()).isEqualTo(smallN);
        assertThat(alice.itemHash(smallN - 1)).isEqualTo(Fnv1a64.hash("i11"));
        assertThat(alice.eventTime(0)).isEqualTo(ms(T0.plusSeconds(7)));
    }

    @Test
    void onRocksDbScoresMatchTheReferenceAndStateAndTimersReturnToZero() throws Exception {
        harness = new KeyedOneInputStreamOperatorTestHarness<>(
                new BatchScoringOperator(bundle, spec.maxEvents(), ONE_HOUR, NO_TTL, 1, 4, MAX_DELAY),
                r -> r.userId, Types.STRING);
        harness.setStateBackend(new EmbeddedRocksDBStateBackend());
        harness.open();
        Random random = new Random(5);
        List<Clicks.Builder> alice = randomHistory(random, 60, ALICE);
        List<Clicks.Builder> bob = randomHistory(random, 60, BOB);
        for (int i = 0; i < alice.size(); i++) {
            send(alice.get(i));
            send(bob.get(i));
            if (i % 7 == 6) {
                watermark(Math.min(alice.get(i).millis(), bob.get(i).millis()) - 1);
            }
        }
        long last = Math.max(alice.get(alice.size() - 1).millis(), bob.get(bob.size() - 1).millis());
        watermark(last);

        assertScoresMatchReference(withoutDuplicates(alice), forUser(scored(), ALICE), spec.maxEvents(), ONE_HOUR);
        assertScoresMatchReference(withoutDuplicates(bob), forUser(scored(), BOB), spec.maxEvents(), ONE_HOUR);
        // The RocksDB harness cannot count entries: count the users under each state instead.
        // A user whose last event is an hour or more behind the other's was cleaned up already.
        long live = List.of(alice, bob).stream()
                .filter(h -> h.get(h.size() - 1).millis() + ONE_HOUR > last).count();
        assertThat(live).isPositive();
        assertThat(usersWithState("window")).as("windows of users active within the horizon").isEqualTo(live);
        assertThat(usersWithState("pending")).isZero();

        watermark(last + ONE_HOUR);
        assertThat(usersWithState("window")).isZero();
        assertThat(usersWithState("pending")).isZero();
        assertThat(harness.numEventTimeTimers()).isZero();
    }

    @Test
    void aSavepointWithListWindowsFailsWithTheWayOut() throws Exception {
        var old = new KeyedOneInputStreamOperatorTestHarness<String, InputRecord, ScoredEvent>(
                new ListWindowOperator(), r -> r.userId, Types.STRING);
        old.open();
        old.processElement(click(ALICE).at(T0).record(), ms(T0));
        var snapshot = old.snapshot(1L, ms(T0));
        old.close();

        harness = new KeyedOneInputStreamOperatorTestHarness<>(
                new BatchScoringOperator(bundle, spec.maxEvents(), ONE_HOUR, NO_TTL, 1, 64, MAX_DELAY),
                r -> r.userId, Types.STRING);
        harness.initializeState(snapshot);

        assertThatThrownBy(harness::open).hasStackTraceContaining("kept windows as a list of events")
                .hasStackTraceContaining("without that savepoint");
        // It never opened, so there is nothing to finish (closing would flush a batch that does not exist).
        harness = null;
    }

    /** The scorer's window state as it was before the packed layout: a list of events named "window". */
    private static final class ListWindowOperator extends AbstractStreamOperator<ScoredEvent>
            implements OneInputStreamOperator<InputRecord, ScoredEvent> {
        private transient ListState<WindowEvent> window;

        @Override
        public void open() throws Exception {
            super.open();
            window = getPartitionedState(new ListStateDescriptor<>(BatchScoringOperator.WINDOW_STATE,
                    TypeInformation.of(WindowEvent.class)));
        }

        @Override
        public void processElement(StreamRecord<InputRecord> element) throws Exception {
            InputRecord r = element.getValue();
            window.add(new WindowEvent(r.itemId, r.categoryId, 1, r.eventTime));
        }
    }

    private long usersWithState(String state) {
        try (var keys = harness.getOperator().getKeyedStateBackend().getKeys(state, VoidNamespace.INSTANCE)) {
            return keys.count();
        }
    }

    private byte[] storedWindow(String user) throws Exception {
        var backend = harness.getOperator().getKeyedStateBackend();
        backend.setCurrentKey(user);
        return backend.getPartitionedState(VoidNamespace.INSTANCE, VoidNamespaceSerializer.INSTANCE,
                new ValueStateDescriptor<>(BatchScoringOperator.WINDOW_STATE,
                        PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO)).value();
    }

    // ---------------------------------------------------------------- batching

    @Test
    void atBatchSizeOneEveryScoreIsBitForBitTheReferencesOfOneRow() throws Exception {
        harness = open(spec.maxEvents(), spec.horizonMs(), NO_TTL, 1);
        List<Clicks.Builder> history = randomHistory(new Random(7), 40, ALICE);
        history.forEach(this::sendUnchecked);

        harness.processWatermark(history.get(history.size() - 1).millis());

        assertThat(harness.getOutput()).as("a batch of one needs no deadline").isNotEmpty();
        assertScoresMatchReference(withoutDuplicates(history), scored(), spec.maxEvents(), spec.horizonMs(), 0f);
    }

    @Test
    void readyEventsOfManyUsersWaitForOneCallAndTheWatermarkWaitsBehindThem() throws Exception {
        openWithModelWindow();
        send(click(ALICE).at(T0));
        send(click(BOB).at(T0_PLUS_1S));
        send(click("carol").at(T0_PLUS_2S));

        harness.processWatermark(ms(T0_PLUS_2S));
        assertThat(harness.getOutput()).as("scores and watermark wait for the batch").isEmpty();

        harness.setProcessingTime(harness.getProcessingTime() + MAX_DELAY.toMillis() - 1);
        assertThat(harness.getOutput()).isEmpty();
        harness.setProcessingTime(harness.getProcessingTime() + 1);

        assertThat(new ArrayList<>(harness.getOutput())).extracting(o -> o instanceof Watermark
                        ? "watermark" : ((ScoredEvent) ((StreamRecord<?>) o).getValue()).userId)
                .containsExactly(ALICE, BOB, "carol", "watermark");
    }

    @Test
    void aFullBatchIsScoredAtOnceAndTheRestOnTheDeadline() throws Exception {
        harness = open(spec.maxEvents(), spec.horizonMs(), NO_TTL, 2);
        send(click(ALICE).at(T0));
        send(click(BOB).at(T0_PLUS_1S));
        send(click("carol").at(T0_PLUS_2S));

        harness.processWatermark(ms(T0_PLUS_2S));
        assertThat(scored()).extracting(s -> s.userId).containsExactly(ALICE, BOB);

        harness.setProcessingTime(harness.getProcessingTime() + MAX_DELAY.toMillis());
        assertThat(scored()).extracting(s -> s.userId).containsExactly(ALICE, BOB, "carol");
    }

    @Test
    void nothingBufferedCrossesACheckpointBarrier() throws Exception {
        openWithModelWindow();
        send(click(ALICE).at(T0));
        send(click(BOB).at(T0_PLUS_1S));
        harness.processWatermark(ms(T0_PLUS_1S));
        assertThat(harness.getOutput()).isEmpty();

        harness.prepareSnapshotPreBarrier(1L);

        assertThat(scored()).extracting(s -> s.userId).containsExactly(ALICE, BOB);
        assertThat(harness.getOutput()).last().isEqualTo(new Watermark(ms(T0_PLUS_1S)));
    }

    @Test
    void aDeadlineOfAnEarlierBatchDoesNotCutTheNextOneShort() throws Exception {
        harness = open(spec.maxEvents(), spec.horizonMs(), NO_TTL, 2);
        send(click(ALICE).at(T0));
        send(click(BOB).at(T0_PLUS_1S));
        harness.processWatermark(ms(T0_PLUS_1S)); // full: scored at once, its deadline now stale
        send(click("carol").at(T0_PLUS_2S));
        harness.setProcessingTime(harness.getProcessingTime() + 1);
        harness.processWatermark(ms(T0_PLUS_2S));

        harness.setProcessingTime(harness.getProcessingTime() + MAX_DELAY.toMillis() - 1);
        assertThat(scored()).extracting(s -> s.userId).containsExactly(ALICE, BOB);
        harness.setProcessingTime(harness.getProcessingTime() + 1);
        assertThat(scored()).extracting(s -> s.userId).containsExactly(ALICE, BOB, "carol");
    }

    private static List<Clicks.Builder> randomHistory(Random random, int count, String user) {
        List<String> types = spec.vocabulary();
        List<Clicks.Builder> out = new ArrayList<>();
        Instant t = T0;
        for (int i = 0; i < count; i++) {
            t = t.plusSeconds(random.nextInt(4) == 0 ? 0 : random.nextInt(2 * 3600));
            out.add(click(user).type(types.get(random.nextInt(types.size()))).item("i" + random.nextInt(8))
                    .category("c" + random.nextInt(3)).at(t).offset(i));
        }
        return out;
    }

    // ---------------------------------------------------------------- construction

    @Test
    void windowLengthMustFitTheModel() {
        assertThatThrownBy(() -> new BatchScoringOperator(bundle, spec.maxEvents() + 1, ONE_HOUR, NO_TTL, 1, 1, MAX_DELAY))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(Integer.toString(spec.maxEvents()));
        assertThatThrownBy(() -> new BatchScoringOperator(bundle, 0, ONE_HOUR, NO_TTL, 1, 1, MAX_DELAY))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new BatchScoringOperator(bundle, 1, 0, NO_TTL, 1, 1, MAX_DELAY))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("horizon");
    }

    // ---------------------------------------------------------------- reference computation

    /**
     * Asserts that {@code out} are the scores of {@code history} (one user's clicks, in the order the operator must
     * apply them once sorted by time; duplicates already removed) computed independently of the operator.
     */
    private static void assertScoresMatchReference(
            List<Clicks.Builder> history, List<ScoredEvent> out, int maxEvents, long horizonMs) {
        assertScoresMatchReference(history, out, maxEvents, horizonMs, SCORE_TOLERANCE);
    }

    private static void assertScoresMatchReference(
            List<Clicks.Builder> history, List<ScoredEvent> out, int maxEvents, long horizonMs, float tolerance) {
        List<Clicks.Builder> ordered = new ArrayList<>(history);
        ordered.sort(Comparator.comparingLong(Clicks.Builder::millis)); // stable: arrival order within a time
        assertThat(out).hasSameSizeAs(ordered);
        List<WindowEvent> sofar = new ArrayList<>();
        FeatureBatch batch = referenceEncoder.newBatch(1);
        for (int i = 0; i < ordered.size(); i++) {
            ClickEvent c = ordered.get(i).event();
            sofar.add(new WindowEvent(c.getItemId(), c.getCategoryId(), spec.typeId(c.getEventType()),
                    c.getEventTime().toEpochMilli()));
            List<WindowEvent> window = WindowRule.windowEndingAt(sofar, maxEvents, horizonMs);
            batch.clear();
            referenceEncoder.add(window, batch);
            float[][] expected = referenceScorer.score(batch);

            ScoredEvent s = out.get(i);
            assertThat(s.eventTime).as("event %d", i).isEqualTo(c.getEventTime().toEpochMilli());
            assertThat(s.itemId).as("event %d", i).isEqualTo(c.getItemId());
            assertThat(s.windowLength).as("window length of event %d", i).isEqualTo(window.size());
            for (int o = 0; o < expected.length; o++) {
                assertThat(s.scores[o]).as("%s of event %d", spec.outputs().get(o).name(), i)
                        .isCloseTo(expected[o][0], within(tolerance));
            }
        }
    }

    private static List<Clicks.Builder> withoutDuplicates(List<Clicks.Builder> clicks) {
        List<Clicks.Builder> out = new ArrayList<>();
        List<String> seen = new ArrayList<>();
        for (Clicks.Builder c : clicks) {
            ClickEvent e = c.event();
            String key = e.getItemId() + "|" + e.getEventType() + "|" + e.getEventTime().toEpochMilli();
            if (!seen.contains(key)) {
                seen.add(key);
                out.add(c);
            }
        }
        return out;
    }

    private static List<ScoredEvent> forUser(List<ScoredEvent> out, String user) {
        return out.stream().filter(s -> s.userId.equals(user)).collect(Collectors.toList());
    }

    private void sendUnchecked(Clicks.Builder c) {
        try {
            send(c);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }
}

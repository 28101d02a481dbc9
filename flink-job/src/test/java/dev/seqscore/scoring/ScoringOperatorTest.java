package dev.seqscore.scoring;

import static dev.seqscore.scoring.ScoringFixture.MAX_DELAY;
import static dev.seqscore.scoring.ScoringFixture.ONE_HOUR;
import static dev.seqscore.scoring.ScoringFixture.assumeServes;
import static dev.seqscore.scoring.ScoringFixture.settings;
import static dev.seqscore.scoring.ScoringReference.withoutDuplicates;
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
import static org.assertj.core.api.Assertions.tuple;
import static org.assertj.core.api.Assertions.within;

import dev.seqscore.avro.DeadLetter;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.events.InputRecord;
import dev.seqscore.features.Fnv1a64;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.PackedWindow;
import dev.seqscore.features.Scoring;
import dev.seqscore.reasons.Reason;
import dev.seqscore.testing.Clicks;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.ListTypeInfo;
import org.apache.flink.runtime.state.StateBackend;
import org.apache.flink.runtime.state.hashmap.HashMapStateBackend;
import org.apache.flink.state.rocksdb.EmbeddedRocksDBStateBackend;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link ScoringOperator} in a keyed harness on the bundle, with either model (each test runs once per
 * {@code --scoring} mode): events wait for the watermark and are scored in event-time order whatever the arrival
 * order; the window is capped by count and by horizon; exact duplicates are dropped; events at or behind the
 * watermark go to the LATE side output with their origin, and so do events behind their user's applied ones after
 * a restore (which starts without a watermark); every score equals an independent computation
 * ({@link ScoringReference}), bit for bit at batch size 1; ready events of many users share one model call, scored when
 * the batch is full, on the latency deadline, before a checkpoint barrier and at the end of input, with the watermark
 * (and the user timers it would fire) held behind them; waiting events, user values and timers survive a restore; a
 * user value costs one read and one write per event and one timer; with no model-state TTL and no cooldown, nothing
 * is left once the watermark passes newest + H.
 *
 * <p>Changed from the two operators this one replaced: events waiting for the watermark are in operator memory, not
 * keyed state and timers (so a waiting event costs neither), and reach keyed state only in a snapshot; a user's
 * ready events take one batch row each, in successive batches (the streaming model's next step needs the state the
 * current one returns), so one user's burst takes one deadline per event unless other users fill the batches.
 */
class ScoringOperatorTest {
    /**
     * ONNX Runtime may pick different kernels for a batch of k rows than for one row, so the operator's batched
     * scores can differ from the reference in the last bits; anything beyond that is a different input.
     */
    private static final float SCORE_TOLERANCE = 1e-5f;

    private static ModelSpec spec;
    private static final Map<Scoring, ScoringReference> references = new EnumMap<>(Scoring.class);

    private ScoringHarness harness;

    @BeforeAll
    static void loadModel() {
        spec = ScoringFixture.spec();
    }

    @AfterAll
    static void closeModel() {
        references.values().forEach(ScoringReference::close);
        references.clear();
    }

    @AfterEach
    void closeHarness() throws Exception {
        if (harness != null) {
            harness.close();
            harness = null;
        }
    }

    private static ScoringReference reference(Scoring mode) {
        return references.computeIfAbsent(mode, m -> new ScoringReference(ScoringFixture.bundle(), m));
    }

    private ScoringHarness open(ScoringFixture.Settings s) throws Exception {
        assumeServes(s.scoring);
        harness = ScoringHarness.open(s);
        return harness;
    }

    private ScoringHarness open(Scoring mode) throws Exception {
        return open(settings(mode));
    }

    private void send(Clicks.Builder c) throws Exception {
        harness.send(c);
    }

    private void watermark(long w) throws Exception {
        harness.watermark(w);
    }

    private List<ScoredEvent> scored() {
        return harness.scored();
    }

    private static List<Instant> times(List<ScoredEvent> out) {
        return out.stream().map(s -> Instant.ofEpochMilli(s.eventTime)).toList();
    }

    private void assertMatchesReference(List<Clicks.Builder> history, List<ScoredEvent> out) {
        reference(harness.settings.scoring()).assertMatches(history, out, harness.settings.maxEvents(),
                harness.settings.horizonMs(), SCORE_TOLERANCE);
    }

    // ---------------------------------------------------------------- ordering

    @BothModes
    void nothingIsScoredBeforeTheWatermarkPassesTheEvent(Scoring mode) throws Exception {
        open(mode);
        send(click(ALICE).at(T0));
        send(click(ALICE).at(T0_PLUS_1M));

        assertThat(scored()).isEmpty();
        assertThat(harness.timers()).as("a waiting event needs no timer").isZero();
        assertThat(harness.h.numKeyedStateEntries()).as("nor keyed state").isZero();

        watermark(ms(T0_PLUS_1M) - 1);
        assertThat(times(scored())).containsExactly(T0);

        watermark(ms(T0_PLUS_1M));
        assertThat(times(scored())).containsExactly(T0, T0_PLUS_1M);
    }

    @BothModes
    void outOfOrderArrivalsAreScoredInEventTimeOrder(Scoring mode) throws Exception {
        open(mode);
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
        assertMatchesReference(history, out);
    }

    @BothModes
    void outputCarriesTheEventTimeAsTimestamp(Scoring mode) throws Exception {
        open(mode);
        send(click(ALICE).at(T0_PLUS_1M));
        send(click(ALICE).at(T0));

        watermark(ms(T0_PLUS_1M));

        assertThat(harness.h.extractOutputStreamRecords()).extracting(StreamRecord::getTimestamp)
                .containsExactly(ms(T0), ms(T0_PLUS_1M));
    }

    @BothModes
    void eventsWithTheSameTimeKeepTheirArrivalOrder(Scoring mode) throws Exception {
        open(mode);
        List<Clicks.Builder> history = List.of(
                click(ALICE).item("first").at(T0),
                click(ALICE).item("second").at(T0),
                click(ALICE).item("third").at(T0));
        harness.sendAll(history);

        watermark(ms(T0));

        assertThat(scored()).extracting(s -> s.itemId).containsExactly("first", "second", "third");
        assertMatchesReference(history, scored());
    }

    @BothModes
    void scoredEventKeepsTheClickAndItsOrigin(Scoring mode) throws Exception {
        open(mode);
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
        assertThat(s.scores).hasSize(harness.settings.served().outputs().size());
        for (float score : s.scores) {
            assertThat(score).isBetween(0f, 1f);
        }
    }

    // ---------------------------------------------------------------- window

    @BothModes
    void windowIsCappedAtMaxEvents(Scoring mode) throws Exception {
        int smallN = 3;
        open(settings(mode).maxEvents(smallN));
        List<Clicks.Builder> history = new ArrayList<>();
        for (int i = 0; i < smallN + 3; i++) {
            history.add(click(ALICE).item("i" + i).at(T0.plusSeconds(i)));
        }
        harness.sendAll(history);

        watermark(ms(T0.plusSeconds(smallN + 3)));

        assertThat(scored()).extracting(s -> s.windowLength).containsExactly(1, 2, 3, 3, 3, 3);
        assertMatchesReference(history, scored());
    }

    @BothModes
    void eventsOutsideTheHorizonOfTheNewOneAreEvicted(Scoring mode) throws Exception {
        open(settings(mode).horizonMs(ONE_HOUR));
        List<Clicks.Builder> history = List.of(
                click(ALICE).item("a").at(T0),
                click(ALICE).item("b").at(T0_PLUS_30M),
                // T0 is exactly H before: out (the contract keeps t_e - t_i < H).
                click(ALICE).item("c").at(T0_PLUS_1H),
                click(ALICE).item("d").at(T0_PLUS_2H));
        harness.sendAll(history);

        watermark(ms(T0_PLUS_2H));

        assertThat(scored()).extracting(s -> s.windowLength).containsExactly(1, 2, 2, 1);
        assertMatchesReference(history, scored());
    }

    @BothModes
    void windowsAreKeptPerUser(Scoring mode) throws Exception {
        open(mode);
        send(click(ALICE).at(T0));
        send(click(BOB).at(T0_PLUS_1S));
        send(click(ALICE).item("i2").at(T0_PLUS_2S));

        watermark(ms(T0_PLUS_2S));

        assertThat(scored()).extracting(s -> s.userId + ":" + s.windowLength)
                .containsExactly(ALICE + ":1", BOB + ":1", ALICE + ":2");
    }

    @BothModes
    void exactDuplicatesAreDropped(Scoring mode) throws Exception {
        open(mode);
        send(click(ALICE).type("cart").item("i1").at(T0).offset(1));
        send(click(ALICE).type("cart").item("i1").at(T0).offset(2));
        // Same time, other item or type: not a duplicate.
        send(click(ALICE).type("cart").item("i2").at(T0).offset(3));
        send(click(ALICE).type("view").item("i1").at(T0).offset(4));

        watermark(ms(T0));

        assertThat(scored()).extracting(s -> s.sourceOffset).containsExactly(1L, 3L, 4L);
        assertThat(scored()).extracting(s -> s.windowLength).containsExactly(1, 2, 3);
    }

    @BothModes
    void duplicateArrivingInALaterWatermarkRoundIsStillDropped(Scoring mode) throws Exception {
        // Same event time, but the watermark moved in between without passing it.
        open(mode);
        send(click(ALICE).item("i1").at(T0_PLUS_1M).offset(1));
        watermark(ms(T0));
        send(click(ALICE).item("i1").at(T0_PLUS_1M).offset(2));

        watermark(ms(T0_PLUS_1M));

        assertThat(scored()).extracting(s -> s.sourceOffset).containsExactly(1L);
    }

    // ---------------------------------------------------------------- lateness

    @BothModes
    void eventAtOrBehindTheWatermarkGoesToTheLateOutputWithItsOrigin(Scoring mode) throws Exception {
        open(mode);
        harness.h.setProcessingTime(ms(T0_PLUS_10M));
        send(click(ALICE).at(T0_PLUS_1M));
        watermark(ms(T0_PLUS_1M));
        byte[] stateBefore = harness.stored(ALICE).clone();
        int timersBefore = harness.timers();
        long now = harness.h.getProcessingTime();

        Clicks.Builder atWatermark = click(ALICE).type("cart").item("late-1").at(T0_PLUS_1M).from("clicks", 2, 40L);
        Clicks.Builder behind = click(ALICE).type("buy").item("late-2").at(T0).from("clicks", 2, 41L);
        send(atWatermark);
        send(behind);
        harness.deadline();

        assertThat(scored()).hasSize(1);
        List<DeadLetter> late = harness.late();
        assertThat(late).extracting(d -> d.getReason()).containsExactly("LATE_EVENT", "LATE_EVENT");
        assertThat(late).extracting(d -> d.getSourceTopic(), d -> d.getSourcePartition(), d -> d.getSourceOffset())
                .containsExactly(tuple("clicks", 2, 40L), tuple("clicks", 2, 41L));
        assertThat(late.get(0).getDetail()).contains(Long.toString(ms(T0_PLUS_1M)));
        assertThat(late.get(0).getRecordedAt()).isEqualTo(Instant.ofEpochMilli(now));
        assertThat(ClickEventAvro.decode(bytes(late.get(0).getRaw()))).isEqualTo(atWatermark.event());
        assertThat(ClickEventAvro.decode(bytes(late.get(1).getRaw()))).isEqualTo(behind.event());
        // A late event must not change the user's state nor schedule anything.
        assertThat(harness.stored(ALICE)).isEqualTo(stateBefore);
        assertThat(harness.timers()).isEqualTo(timersBefore);
    }

    @BothModes
    void lateEventDoesNotChangeLaterScores(Scoring mode) throws Exception {
        open(mode);
        List<Clicks.Builder> history = List.of(click(ALICE).item("a").at(T0), click(ALICE).item("b").at(T0_PLUS_2M));
        send(history.get(0));
        watermark(ms(T0_PLUS_1M));
        send(click(ALICE).item("late").at(T0_PLUS_1M));
        send(history.get(1));

        watermark(ms(T0_PLUS_2M));

        assertThat(scored()).extracting(s -> s.itemId).containsExactly("a", "b");
        assertMatchesReference(history, scored());
    }

    // ---------------------------------------------------------------- state lifetime

    /**
     * Was "state and timers return to 0" of the window operator and the alert operator; now with no model-state TTL
     * (the default of windowed scoring, a choice with incremental) and no cooldown, the user value and its one timer
     * are gone once the watermark passes newest + H.
     */
    @BothModes
    void stateAndTimersAreGoneOnceTheWatermarkPassesNewestPlusHorizon(Scoring mode) throws Exception {
        open(settings(mode).horizonMs(ONE_HOUR).modelStateTtlMs(0).cooldownMs(0));
        send(click(ALICE).at(T0));
        send(click(ALICE).item("i2").at(T0_PLUS_1M));
        send(click(BOB).at(T0_PLUS_2M));
        assertThat(harness.h.numKeyedStateEntries()).as("waiting events are not in keyed state").isZero();

        watermark(ms(T0_PLUS_2M));
        assertThat(scored()).hasSize(3);
        assertThat(harness.h.numKeyedStateEntries()).as("one value per user").isEqualTo(2);
        assertThat(harness.timers()).as("one timer per user").isEqualTo(2);

        // Alice's first event is out of every future window, her second is not: keep her value.
        watermark(ms(T0_PLUS_1H));
        assertThat(harness.h.numKeyedStateEntries()).isEqualTo(2);
        assertThat(harness.userState(ALICE).window().size()).isEqualTo(2);

        watermark(ms(T0_PLUS_1M) + ONE_HOUR);
        assertThat(harness.h.numKeyedStateEntries()).as("only Bob's value").isEqualTo(1);
        assertThat(harness.stored(ALICE)).isNull();

        watermark(ms(T0_PLUS_2M) + ONE_HOUR);
        assertThat(harness.h.numKeyedStateEntries()).isZero();
        assertThat(harness.timers()).isZero();
    }

    /**
     * With incremental scoring the window part of the value clears at newest + H, the lifetime record and the model
     * state stay until the user's last event + the model-state TTL (and a user back before then goes on from them),
     * then the value and its timer are gone: on the heap and on RocksDB.
     */
    @Test
    void incrementalWindowClearsAtTheHorizonAndTheValueAfterTheModelStateTtlOnHeap() throws Exception {
        windowClearsAtTheHorizonAndTheValueAfterTheModelStateTtl(new HashMapStateBackend());
    }

    @Test
    void incrementalWindowClearsAtTheHorizonAndTheValueAfterTheModelStateTtlOnRocksDb() throws Exception {
        windowClearsAtTheHorizonAndTheValueAfterTheModelStateTtl(new EmbeddedRocksDBStateBackend());
    }

    private void windowClearsAtTheHorizonAndTheValueAfterTheModelStateTtl(StateBackend backend) throws Exception {
        long ttl = 3 * ONE_HOUR;
        ScoringFixture.Settings s = settings(Scoring.INCREMENTAL).horizonMs(ONE_HOUR).modelStateTtlMs(ttl)
                .cooldownMs(0);
        assumeServes(s.scoring);
        harness = ScoringHarness.open(s.build(), backend);
        List<Clicks.Builder> alice = List.of(click(ALICE).item("a1").at(T0), click(ALICE).item("a2").at(T0_PLUS_1M),
                click(ALICE).type("cart").item("a3").at(T0_PLUS_2H));
        send(alice.get(0));
        send(alice.get(1));
        send(click(BOB).at(T0_PLUS_2M));
        watermark(ms(T0_PLUS_2M));

        watermark(ms(T0_PLUS_1M) + ONE_HOUR);
        UserState a = harness.userState(ALICE);
        assertThat(a.window().isEmpty()).as("alice's window, past its horizon").isTrue();
        assertThat(a.stateTag()).as("her model state").isEqualTo(harness.settings.served().versionTag());
        assertThat(harness.lifetime(ALICE).count(spec.typeId("view"))).as("her lifetime record").isEqualTo(2);
        assertThat(harness.userState(BOB).window().size()).isEqualTo(1);

        // Back within the TTL: a window of one, but the lifetime record and model state go on.
        send(alice.get(2));
        watermark(ms(T0_PLUS_2H));
        reference(Scoring.INCREMENTAL).assertMatches(alice, harness.scored(ALICE), s.maxEvents, ONE_HOUR,
                SCORE_TOLERANCE);
        assertThat(harness.scored(ALICE)).extracting(e -> e.windowLength).containsExactly(1, 2, 1);

        watermark(ms(T0_PLUS_2M) + ttl - 1);
        assertThat(harness.usersWith(ScoringOperator.USER_STATE)).isEqualTo(2);
        watermark(ms(T0_PLUS_2M) + ttl);
        assertThat(harness.stored(BOB)).as("bob, inactive for the TTL").isNull();
        assertThat(harness.usersWith(ScoringOperator.USER_STATE)).isEqualTo(1);
        assertThat(harness.userState(ALICE).window().isEmpty()).as("alice's window, past its horizon again").isTrue();

        watermark(ms(T0_PLUS_2H) + ttl - 1);
        assertThat(harness.usersWith(ScoringOperator.USER_STATE)).isEqualTo(1);
        watermark(ms(T0_PLUS_2H) + ttl);
        assertThat(harness.usersWith(ScoringOperator.USER_STATE)).isZero();
        assertThat(harness.usersWith(ScoringOperator.PENDING_STATE)).isZero();
        assertThat(harness.timers()).isZero();
    }

    @BothModes
    void aWatermarkJumpPastTheHorizonAppliesWaitingEventsBeforeItClearsTheWindow(Scoring mode) throws Exception {
        // The cleanup time of the first window (T0 + 1h) and the second event (T0 + 30m) become due in one round:
        // the event must still see the first one.
        open(settings(mode).horizonMs(ONE_HOUR).modelStateTtlMs(0).cooldownMs(0));
        send(click(ALICE).item("a").at(T0));
        watermark(ms(T0));
        send(click(ALICE).item("b").at(T0_PLUS_30M));

        watermark(ms(T0_PLUS_2H));

        assertThat(scored()).extracting(s -> s.windowLength).containsExactly(1, 2);
        assertThat(harness.h.numKeyedStateEntries()).isZero();
        assertThat(harness.timers()).isZero();
    }

    @BothModes
    void userReturningAfterCleanupStartsAFreshWindow(Scoring mode) throws Exception {
        open(settings(mode).horizonMs(ONE_HOUR).modelStateTtlMs(0).cooldownMs(0));
        send(click(ALICE).at(T0));
        watermark(ms(T0_PLUS_1H));
        assertThat(harness.h.numKeyedStateEntries()).isZero();

        send(click(ALICE).item("back").at(T0_PLUS_2H));
        watermark(ms(T0_PLUS_2H));

        assertThat(scored()).extracting(s -> s.windowLength).containsExactly(1, 1);
    }

    /** The processing-time TTL backstop, here 1 h (the horizon is shorter, so it is what the state keeps). */
    @BothModes
    void ttlBackstopForgetsTheWindowOfAUserWhoseWatermarkStalled(Scoring mode) throws Exception {
        Duration ttl = Duration.ofHours(1);
        open(settings(mode).horizonMs(Duration.ofMinutes(30).toMillis()).modelStateTtlMs(0).stateTtl(ttl));
        assertThat(harness.settings.effectiveStateTtl()).isEqualTo(ttl);
        harness.h.setStateTtlProcessingTime(0);
        send(click(ALICE).at(T0));
        watermark(ms(T0));

        // Within the TTL the value is still there...
        harness.h.setStateTtlProcessingTime(ttl.toMillis() - 1);
        send(click(ALICE).item("i2").at(T0_PLUS_1M));
        watermark(ms(T0_PLUS_1M));
        // ...and is rewritten by that event, so the TTL counts again from there.
        harness.h.setStateTtlProcessingTime(2 * ttl.toMillis());
        send(click(ALICE).item("i3").at(T0_PLUS_2M));
        watermark(ms(T0_PLUS_2M));

        assertThat(scored()).extracting(s -> s.windowLength).containsExactly(1, 2, 1);
    }

    @BothModes
    void eventsWaitingForTheWatermarkOutliveTheTtlAndAreScoredWhenItMoves(Scoring mode) throws Exception {
        Duration ttl = Duration.ofHours(1);
        open(settings(mode).horizonMs(Duration.ofMinutes(30).toMillis()).modelStateTtlMs(0).stateTtl(ttl));
        harness.h.setStateTtlProcessingTime(0);
        send(click(ALICE).at(T0));
        send(click(ALICE).item("i2").at(T0_PLUS_1M));
        // Traffic stops for longer than the TTL before the watermark passes the waiting events.
        harness.h.setStateTtlProcessingTime(3 * ttl.toMillis());
        watermark(ms(T0_PLUS_1M));

        assertThat(scored()).extracting(s -> s.windowLength).containsExactly(1, 2);
    }

    // ---------------------------------------------------------------- scores

    @BothModes
    void scoresEqualAnIndependentComputationOverTheWholeHistory(Scoring mode) throws Exception {
        // Small batches, so that the operator flushes mid-round as well as on deadlines.
        open(settings(mode).maxBatch(3));
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

        assertMatchesReference(withoutDuplicates(alice), harness.scored(ALICE));
        assertMatchesReference(withoutDuplicates(bob), harness.scored(BOB));
    }

    @BothModes
    void shorterWindowIsScoredLikeTheSameRuleWithThatLength(Scoring mode) throws Exception {
        int smallN = 4;
        open(settings(mode).maxEvents(smallN).horizonMs(ONE_HOUR));
        List<Clicks.Builder> history = new ArrayList<>();
        Instant[] at = {T0, T0_PLUS_1M, T0_PLUS_2M, T0_PLUS_3M, T0_PLUS_5M, T0_PLUS_10M, T0_PLUS_30M, T0_PLUS_1H,
            T0_PLUS_1H.plusSeconds(1), T0_PLUS_2H};
        for (int i = 0; i < at.length; i++) {
            history.add(click(ALICE).type(i % 3 == 0 ? "cart" : "view").item("i" + (i % 4)).at(at[i]));
        }
        harness.sendAll(history);

        watermark(ms(T0_PLUS_2H));

        assertThat(scored()).hasSize(at.length);
        assertThat(scored()).allSatisfy(s -> assertThat(s.windowLength).isBetween(1, smallN));
        assertMatchesReference(history, scored());
    }

    /**
     * Was "seven events of one user at one instant, three per batch"; a user now has one row per batch, so three
     * users' bursts fill the batches. A duplicate in the middle of a batch takes no row and shifts no other row.
     */
    @BothModes
    void manyReadyEventsAreScoredAcrossSeveralFullBatchesAtOnce(Scoring mode) throws Exception {
        open(settings(mode).maxBatch(3));
        String[] users = {ALICE, BOB, "carol"};
        List<List<Clicks.Builder>> histories = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        for (int i = 0; i < 3; i++) {
            for (int u = 0; u < users.length; u++) {
                Clicks.Builder c = click(users[u]).type(i % 2 == 0 ? "view" : "cart").item("i" + i).at(T0)
                        .offset(10 * u + i);
                histories.get(u).add(c);
                send(c);
                if (u == 1 && i == 1) {
                    send(click(BOB).type("cart").item("i1").at(T0).offset(99));
                }
            }
        }

        harness.h.processWatermark(ms(T0));

        assertThat(scored()).as("three full batches, no deadline").hasSize(9);
        assertThat(harness.h.getOutput()).last().isEqualTo(new Watermark(ms(T0)));
        for (int u = 0; u < users.length; u++) {
            assertMatchesReference(histories.get(u), harness.scored(users[u]));
        }
    }

    // ---------------------------------------------------------------- recovery

    @BothModes
    void pendingEventsWindowsAndTimersSurviveACheckpointRestore(Scoring mode) throws Exception {
        open(settings(mode).horizonMs(ONE_HOUR).modelStateTtlMs(0).cooldownMs(0));
        ScoringSettings s = harness.settings;
        List<Clicks.Builder> history = List.of(
                click(ALICE).item("a").at(T0),
                click(ALICE).item("b").at(T0_PLUS_1M),
                click(ALICE).item("c").at(T0_PLUS_2M));
        send(history.get(0));
        send(history.get(1));
        watermark(ms(T0));
        // Snapshot with one event scored (window of 1) and one still waiting for the watermark.
        var snapshot = harness.checkpoint(1L);
        List<ScoredEvent> before = new ArrayList<>(scored());
        harness.close();

        harness = ScoringHarness.restore(s, snapshot);
        send(history.get(2));
        watermark(ms(T0_PLUS_2M));

        List<ScoredEvent> all = new ArrayList<>(before);
        all.addAll(scored());
        assertThat(all).extracting(e -> e.windowLength).containsExactly(1, 2, 3);
        assertMatchesReference(history, all);
        // The restored cleanup timer still clears the value.
        watermark(ms(T0_PLUS_2M) + ONE_HOUR);
        assertThat(harness.stored(ALICE)).isNull();
        assertThat(harness.timers()).isZero();
        // The restored "pending" entry goes with the next checkpoint, which finds nothing waiting.
        harness.checkpoint(2L);
        assertThat(harness.h.numKeyedStateEntries()).isZero();
    }

    /**
     * A checkpoint taken while an event waits for the watermark holds it; after a restore it is scored once, and a
     * checkpoint after that no longer holds it, so a second restore does not score it again.
     */
    @BothModes
    void aWaitingEventInASnapshotIsScoredExactlyOnceAfterRestore(Scoring mode) throws Exception {
        open(mode);
        ScoringSettings s = harness.settings;
        List<Clicks.Builder> history = List.of(click(ALICE).item("a").at(T0), click(ALICE).item("b").at(T0_PLUS_1M));
        harness.sendAll(history);
        watermark(ms(T0));
        var first = harness.checkpoint(1L);
        assertThat(scored()).hasSize(1);
        harness.close();

        harness = ScoringHarness.restore(s, first);
        watermark(ms(T0_PLUS_1M));
        assertThat(scored()).extracting(e -> e.itemId).containsExactly("b");
        assertThat(scored().get(0).windowLength).isEqualTo(2);
        ScoringReference.assertMatches(reference(mode).steps(history, s.maxEvents(), s.horizonMs()).subList(1, 2),
                scored(), SCORE_TOLERANCE);
        var second = harness.checkpoint(2L);
        assertThat(harness.pendingState(ALICE)).as("the second checkpoint's waiting events").isEmpty();
        harness.close();

        harness = ScoringHarness.restore(s, second);
        watermark(ms(T0_PLUS_2M));
        assertThat(scored()).as("scored before the second checkpoint: not again").isEmpty();
    }

    /**
     * The watermark is not part of a checkpoint: after a restore the operator starts without one, so an event that
     * was behind it before the failure (replayed from the source) is not behind the new one. Behind what its user's
     * state has already applied, it cannot be scored in order: it goes to the LATE output, as it would have before,
     * instead of failing the job (and every restart after it, on the same replayed event).
     */
    @BothModes
    void afterARestoreAnEventBehindItsUsersAppliedEventsIsLateNotAFailure(Scoring mode) throws Exception {
        open(mode);
        ScoringSettings s = harness.settings;
        List<Clicks.Builder> history = List.of(click(ALICE).item("a1").at(T0_PLUS_1M),
                click(ALICE).item("same-time").at(T0_PLUS_1M), click(ALICE).item("a3").at(T0_PLUS_3M));
        send(history.get(0));
        watermark(ms(T0_PLUS_1M));
        var snapshot = harness.checkpoint(1L);
        harness.close();

        harness = ScoringHarness.restore(s, snapshot);
        send(click(ALICE).item("behind").at(T0).from("clicks", 0, 7L));
        send(history.get(1));
        send(history.get(2));
        watermark(ms(T0_PLUS_3M));

        assertThat(harness.late()).extracting(d -> d.getReason() + "@" + d.getSourceOffset())
                .containsExactly("LATE_EVENT@7");
        assertThat(harness.late().get(0).getDetail()).contains(Long.toString(ms(T0_PLUS_1M)));
        assertThat(scored()).extracting(e -> e.itemId).containsExactly("same-time", "a3");
        ScoringReference.assertMatches(reference(mode).steps(history, s.maxEvents(), s.horizonMs()).subList(1, 3),
                scored(), SCORE_TOLERANCE);
    }

    /** As above, on RocksDB: the restore reads the waiting events of every user back through its key iterator. */
    @BothModes
    void onRocksDbWaitingEventsValuesAndTimersSurviveARestore(Scoring mode) throws Exception {
        ScoringFixture.Settings s = settings(mode).horizonMs(ONE_HOUR).modelStateTtlMs(0).cooldownMs(0);
        assumeServes(mode);
        harness = ScoringHarness.open(s.build(), new EmbeddedRocksDBStateBackend());
        List<Clicks.Builder> alice = List.of(click(ALICE).item("a1").at(T0), click(ALICE).item("a2").at(T0_PLUS_1M),
                click(ALICE).item("a3").at(T0_PLUS_2M));
        List<Clicks.Builder> bob = List.of(click(BOB).item("b1").at(T0), click(BOB).item("b2").at(T0_PLUS_2M));
        harness.sendAll(alice);
        harness.sendAll(bob);
        watermark(ms(T0));
        var snapshot = harness.checkpoint(1L);
        assertThat(harness.usersWith(ScoringOperator.PENDING_STATE)).isEqualTo(2);
        List<ScoredEvent> before = new ArrayList<>(scored());
        harness.close();

        harness = ScoringHarness.restore(s.build(), snapshot, new EmbeddedRocksDBStateBackend(), null);
        watermark(ms(T0_PLUS_2M));

        List<ScoredEvent> all = new ArrayList<>(before);
        all.addAll(scored());
        assertMatchesReference(alice, all.stream().filter(e -> e.userId.equals(ALICE)).toList());
        assertMatchesReference(bob, all.stream().filter(e -> e.userId.equals(BOB)).toList());
        watermark(ms(T0_PLUS_2M) + ONE_HOUR);
        harness.checkpoint(2L);
        assertThat(harness.usersWith(ScoringOperator.USER_STATE)).isZero();
        assertThat(harness.usersWith(ScoringOperator.PENDING_STATE)).isZero();
        assertThat(harness.timers()).isZero();
    }

    /** At the end of a bounded input (the watermark at its maximum, then finish) nothing ready is left behind. */
    @BothModes
    void whatIsReadyAtTheEndOfInputIsScored(Scoring mode) throws Exception {
        open(mode);
        List<Clicks.Builder> alice = List.of(click(ALICE).item("a1").at(T0), click(ALICE).item("a2").at(T0_PLUS_1M));
        harness.sendAll(alice);
        send(click(BOB).at(T0_PLUS_1M));
        harness.h.processWatermark(Long.MAX_VALUE);
        assertThat(scored()).as("a batch of two, waiting to fill").isEmpty();

        harness.operator().finish();

        assertThat(scored()).extracting(e -> e.itemId).containsExactly("a1", "i1", "a2");
        assertMatchesReference(alice, harness.scored(ALICE));
        assertThat(harness.h.getOutput()).last().isEqualTo(Watermark.MAX_WATERMARK);
        assertThat(harness.timers()).isZero();
    }

    /**
     * Waiting events are in operator memory: keyed state "pending" is not written per event, holds exactly each
     * user's waiting events (in the order they will be scored) after a checkpoint, stays as that checkpoint wrote it
     * until the next one, and is empty after a checkpoint with nothing waiting.
     */
    @BothModes
    void waitingEventsAreInKeyedStateOnlyAsOfTheLastCheckpoint(Scoring mode) throws Exception {
        open(mode);
        send(click(ALICE).item("a1").at(T0));
        send(click(ALICE).item("a3").at(T0_PLUS_2M));
        send(click(ALICE).item("a2").at(T0_PLUS_1M));
        send(click(BOB).item("b1").at(T0_PLUS_2M));
        assertThat(harness.usersWith(ScoringOperator.PENDING_STATE)).isZero();
        watermark(ms(T0));
        assertThat(harness.usersWith(ScoringOperator.PENDING_STATE)).isZero();

        harness.checkpoint(1L);
        assertThat(harness.usersWith(ScoringOperator.PENDING_STATE)).isEqualTo(2);
        assertThat(harness.pendingState(ALICE)).extracting(r -> r.itemId).containsExactly("a2", "a3");
        assertThat(harness.pendingState(BOB)).extracting(r -> r.itemId).containsExactly("b1");

        watermark(ms(T0_PLUS_1M));
        harness.checkpoint(2L);
        assertThat(harness.pendingState(ALICE)).extracting(r -> r.itemId).containsExactly("a3");
        assertThat(harness.pendingState(BOB)).extracting(r -> r.itemId).containsExactly("b1");

        watermark(ms(T0_PLUS_2M));
        assertThat(scored()).hasSize(4);
        harness.checkpoint(3L);
        assertThat(harness.usersWith(ScoringOperator.PENDING_STATE)).isZero();
    }

    // ---------------------------------------------------------------- reasons

    private List<ScoredEvent> scoreHistory(ScoringFixture.Settings s, List<Clicks.Builder> history)
            throws Exception {
        assumeServes(s.scoring);
        try (ScoringHarness h = ScoringHarness.open(s)) {
            h.sendAll(history);
            h.watermark(history.stream().mapToLong(Clicks.Builder::millis).max().orElseThrow());
            return h.scored();
        }
    }

    @BothModes
    void onlyEventsAtAnExplainThresholdCarryReasons(Scoring mode) throws Exception {
        List<Clicks.Builder> history = randomHistory(new Random(11), 30, ALICE);
        List<ScoredEvent> base = scoreHistory(settings(mode), history);
        // Halfway through the distinct purchase scores this history produced, so some rows reach it and some not.
        double[] purchase = base.stream().mapToDouble(s -> s.scores[0]).distinct().sorted().toArray();
        assertThat(purchase.length).as("distinct purchase scores").isGreaterThan(1);
        double threshold = purchase[purchase.length / 2];
        assertThat(base).allSatisfy(s -> assertThat(s.scores[1]).isLessThan(1f));

        List<ScoredEvent> out = scoreHistory(settings(mode).thresholds(threshold, 1.0).reasonTop(3), history);

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

    /** Several users, so that the batched run really explains many rows per call. */
    @BothModes
    void reasonsOfABatchedCallEqualThoseOfOneEventAtATime(Scoring mode) throws Exception {
        Random random = new Random(5);
        List<Clicks.Builder> history = new ArrayList<>();
        for (String user : List.of(ALICE, BOB, "carol", "dave")) {
            history.addAll(randomHistory(random, 8, user));
        }
        ScoringFixture.Settings everyEvent = settings(mode).thresholds(0.0, 0.0).reasonTop(3);

        List<ScoredEvent> batched = scoreHistory(everyEvent.maxBatch(64), history);
        List<ScoredEvent> single = scoreHistory(settings(mode).thresholds(0.0, 0.0).reasonTop(3).maxBatch(1),
                history);

        assertThat(batched).hasSameSizeAs(single);
        for (String user : List.of(ALICE, BOB, "carol", "dave")) {
            List<ScoredEvent> a = batched.stream().filter(s -> s.userId.equals(user)).toList();
            List<ScoredEvent> b = single.stream().filter(s -> s.userId.equals(user)).toList();
            assertThat(a).hasSameSizeAs(b).isNotEmpty();
            for (int i = 0; i < a.size(); i++) {
                Reason[] x = a.get(i).reasons;
                Reason[] y = b.get(i).reasons;
                assertThat(x).isNotEmpty();
                assertThat(x).extracting(r -> r.output + ":" + r.group)
                        .containsExactlyElementsOf(Arrays.stream(y).map(r -> r.output + ":" + r.group).toList());
                for (int k = 0; k < x.length; k++) {
                    assertThat(x[k].drop).isCloseTo(y[k].drop, within(SCORE_TOLERANCE * 2));
                    assertThat(x[k].text).isEqualTo(y[k].text);
                }
            }
        }
    }

    // ---------------------------------------------------------------- user state

    @BothModes
    void eachUserIsOneValueOfItsPrefixAndAtMostNSlots(Scoring mode) throws Exception {
        int smallN = 5;
        open(settings(mode).maxEvents(smallN));
        for (int i = 0; i < 12; i++) {
            send(click(ALICE).item("i" + i).at(T0.plusSeconds(i)));
            send(click(BOB).item("i" + i).at(T0.plusSeconds(i)));
        }
        watermark(ms(T0.plusSeconds(12)));

        assertThat(scored()).hasSize(24);
        assertThat(harness.h.numKeyedStateEntries()).as("one value per user, nothing pending").isEqualTo(2);
        UserState alice = harness.userState(ALICE);
        assertThat(harness.stored(ALICE)).hasSize(alice.prefixBytes() + PackedWindow.HEADER_BYTES
                + smallN * PackedWindow.COMPACT_SLOT_BYTES);
        PackedWindow window = alice.window();
        assertThat(window.size()).isEqualTo(smallN);
        assertThat(window.itemHash(smallN - 1)).isEqualTo(Fnv1a64.hash("i11"));
        assertThat(window.eventTime(0)).isEqualTo(ms(T0.plusSeconds(7)));
        assertThat(harness.lifetime(ALICE).count(spec.typeId("view"))).as("every event, not only the window's")
                .isEqualTo(12);
        assertThat(alice.stateTag()).isEqualTo(mode == Scoring.INCREMENTAL ? harness.settings.served().versionTag()
                : 0L);
    }

    /**
     * Per scored event one read and one write of the user value (a duplicate: one read), and one event-time timer
     * per user however many events arrive, counted by spying on the operator's state and timer service. A test of
     * the design's cost, not of behaviour: it looks at two private fields by name.
     */
    @BothModes
    void aScoredEventCostsOneStateReadAndOneWriteAndNoTimer(Scoring mode) throws Exception {
        open(settings(mode).horizonMs(ONE_HOUR));
        Counts counts = spy(harness.operator());
        String[] users = {ALICE, BOB, "carol"};
        for (int i = 0; i < 5; i++) {
            for (String u : users) {
                send(click(u).item("i" + i).at(T0.plusSeconds(60L * i)));
            }
            if (i == 2) {
                send(click(BOB).item("i2").at(T0.plusSeconds(120)));
            }
            watermark(ms(T0.plusSeconds(60L * i)));
            assertThat(harness.timers()).as("timers after round %d", i).isEqualTo(users.length);
        }

        assertThat(scored()).hasSize(15);
        assertThat(counts.reads).as("value() calls: 15 events and a duplicate").isEqualTo(16);
        assertThat(counts.writes).as("update() calls").isEqualTo(15);
        assertThat(counts.clears).isZero();
        assertThat(counts.timers).as("timer registrations: one per user").isEqualTo(users.length);
    }

    private static final class Counts {
        int reads;
        int writes;
        int clears;
        int timers;
    }

    @SuppressWarnings("unchecked")
    private static Counts spy(ScoringOperator op) throws Exception {
        Counts c = new Counts();
        Field user = ScoringOperator.class.getDeclaredField("user");
        user.setAccessible(true);
        ValueState<byte[]> state = (ValueState<byte[]>) user.get(op);
        user.set(op, Proxy.newProxyInstance(ScoringOperatorTest.class.getClassLoader(),
                new Class<?>[] {ValueState.class}, (proxy, m, args) -> {
                    switch (m.getName()) {
                        case "value" -> c.reads++;
                        case "update" -> c.writes++;
                        case "clear" -> c.clears++;
                        default -> { }
                    }
                    return invoke(m, state, args);
                }));
        Field timers = ScoringOperator.class.getDeclaredField("timers");
        timers.setAccessible(true);
        Object service = timers.get(op);
        timers.set(op, Proxy.newProxyInstance(ScoringOperatorTest.class.getClassLoader(),
                new Class<?>[] {InternalTimerService.class}, (proxy, m, args) -> {
                    if (m.getName().equals("registerEventTimeTimer")) {
                        c.timers++;
                    }
                    return invoke(m, service, args);
                }));
        return c;
    }

    private static Object invoke(java.lang.reflect.Method m, Object target, Object[] args) throws Throwable {
        try {
            return m.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    @BothModes
    void onRocksDbScoresMatchTheReferenceAndStateAndTimersReturnToZero(Scoring mode) throws Exception {
        // Incremental: the job's model-state TTL (the reset gap), so that when the watermark passes a user's last
        // event + H only the window goes; the rest goes once the TTL has passed too.
        ScoringFixture.Settings s = settings(mode).horizonMs(ONE_HOUR).maxBatch(4).cooldownMs(0);
        if (mode == Scoring.WINDOWED) {
            s.modelStateTtlMs(0);
        }
        assumeServes(mode);
        harness = ScoringHarness.open(s.build(), new EmbeddedRocksDBStateBackend());
        long ttl = harness.settings.modelStateTtlMs();
        Random random = new Random(5);
        List<Clicks.Builder> alice = randomHistory(random, 40, ALICE);
        List<Clicks.Builder> bob = randomHistory(random, 40, BOB);
        for (int i = 0; i < alice.size(); i++) {
            send(alice.get(i));
            send(bob.get(i));
            if (i % 7 == 6) {
                watermark(Math.min(alice.get(i).millis(), bob.get(i).millis()) - 1);
            }
        }
        long last = Math.max(alice.get(alice.size() - 1).millis(), bob.get(bob.size() - 1).millis());
        watermark(last);

        assertMatchesReference(withoutDuplicates(alice), harness.scored(ALICE));
        assertMatchesReference(withoutDuplicates(bob), harness.scored(BOB));
        assertThat(harness.usersWith(ScoringOperator.PENDING_STATE)).isZero();

        watermark(last + ONE_HOUR);
        assertThat(harness.usersWith(ScoringOperator.USER_STATE)).as("values left after the horizon")
                .isEqualTo(ttl == 0 ? 0 : 2);
        if (ttl > 0) {
            assertThat(harness.userState(ALICE).window().isEmpty()).isTrue();
            assertThat(harness.userState(BOB).window().isEmpty()).isTrue();
            watermark(last + ttl);
        }
        assertThat(harness.usersWith(ScoringOperator.USER_STATE)).isZero();
        assertThat(harness.timers()).isZero();
    }

    /**
     * A checkpoint or savepoint of the scorer before the one-value user state (waiting events as a MapState named
     * "pending") cannot be restored: the operator says so and what to do instead of Flink's own message.
     */
    @Test
    void aSavepointOfTheScorerBeforeTheOneValueStateFailsWithTheWayOut() throws Exception {
        var old = new KeyedOneInputStreamOperatorTestHarness<String, InputRecord, ScoredEvent>(
                new MapPendingOperator(), r -> r.userId, Types.STRING);
        old.open();
        old.processElement(click(ALICE).at(T0).record(), ms(T0));
        var snapshot = old.snapshot(1L, ms(T0));
        old.close();

        var restored = new KeyedOneInputStreamOperatorTestHarness<String, InputRecord, ScoredEvent>(
                new ScoringOperator(settings(Scoring.WINDOWED).build()), r -> r.userId, Types.STRING);
        assertThatThrownBy(() -> {
            restored.initializeState(snapshot);
            restored.open();
        }).hasStackTraceContaining("before the one-value user state")
                .hasStackTraceContaining("without it");
    }

    /** The scorer's waiting events as they were kept before: a MapState of event time to events, "pending". */
    private static final class MapPendingOperator extends AbstractStreamOperator<ScoredEvent>
            implements OneInputStreamOperator<InputRecord, ScoredEvent> {
        private transient MapState<Long, List<InputRecord>> pending;

        @Override
        public void open() throws Exception {
            super.open();
            pending = getPartitionedState(new MapStateDescriptor<>(ScoringOperator.PENDING_STATE, Types.LONG,
                    new ListTypeInfo<>(TypeInformation.of(InputRecord.class))));
        }

        @Override
        public void processElement(StreamRecord<InputRecord> element) throws Exception {
            pending.put(element.getValue().eventTime, List.of(element.getValue()));
        }
    }

    // ---------------------------------------------------------------- batching

    @BothModes
    void atBatchSizeOneEveryScoreIsBitForBitTheReferencesOfOneRow(Scoring mode) throws Exception {
        open(settings(mode).maxBatch(1));
        List<Clicks.Builder> history = randomHistory(new Random(7), 40, ALICE);
        harness.sendAll(history);

        harness.h.processWatermark(history.get(history.size() - 1).millis());

        assertThat(harness.h.getOutput()).as("a batch of one needs no deadline").isNotEmpty();
        reference(mode).assertMatches(withoutDuplicates(history), scored(), spec.maxEvents(), spec.horizonMs(), 0f);
    }

    @BothModes
    void readyEventsOfManyUsersWaitForOneCallAndTheWatermarkWaitsBehindThem(Scoring mode) throws Exception {
        open(mode);
        send(click(ALICE).at(T0));
        send(click(BOB).at(T0_PLUS_1S));
        send(click("carol").at(T0_PLUS_2S));

        harness.h.processWatermark(ms(T0_PLUS_2S));
        assertThat(harness.h.getOutput()).as("scores and watermark wait for the batch").isEmpty();

        harness.h.setProcessingTime(harness.h.getProcessingTime() + MAX_DELAY.toMillis() - 1);
        assertThat(harness.h.getOutput()).isEmpty();
        harness.h.setProcessingTime(harness.h.getProcessingTime() + 1);

        assertThat(new ArrayList<>(harness.h.getOutput())).extracting(o -> o instanceof Watermark
                        ? "watermark" : ((ScoredEvent) ((StreamRecord<?>) o).getValue()).userId)
                .containsExactly(ALICE, BOB, "carol", "watermark");
    }

    @BothModes
    void aFullBatchIsScoredAtOnceAndTheRestOnTheDeadline(Scoring mode) throws Exception {
        open(settings(mode).maxBatch(2));
        send(click(ALICE).at(T0));
        send(click(BOB).at(T0_PLUS_1S));
        send(click("carol").at(T0_PLUS_2S));

        harness.h.processWatermark(ms(T0_PLUS_2S));
        assertThat(scored()).extracting(s -> s.userId).containsExactly(ALICE, BOB);

        harness.h.setProcessingTime(harness.h.getProcessingTime() + MAX_DELAY.toMillis());
        assertThat(scored()).extracting(s -> s.userId).containsExactly(ALICE, BOB, "carol");
    }

    @BothModes
    void nothingBufferedCrossesACheckpointBarrier(Scoring mode) throws Exception {
        open(mode);
        send(click(ALICE).at(T0));
        send(click(ALICE).item("i2").at(T0_PLUS_1S));
        send(click(BOB).at(T0_PLUS_1S));
        harness.h.processWatermark(ms(T0_PLUS_1S));
        assertThat(harness.h.getOutput()).isEmpty();

        harness.h.prepareSnapshotPreBarrier(1L);

        assertThat(scored()).extracting(s -> s.userId + ":" + s.windowLength)
                .containsExactly(ALICE + ":1", BOB + ":1", ALICE + ":2");
        assertThat(harness.h.getOutput()).last().isEqualTo(new Watermark(ms(T0_PLUS_1S)));
    }

    @BothModes
    void aDeadlineOfAnEarlierBatchDoesNotCutTheNextOneShort(Scoring mode) throws Exception {
        open(settings(mode).maxBatch(2));
        send(click(ALICE).at(T0));
        send(click(BOB).at(T0_PLUS_1S));
        harness.h.processWatermark(ms(T0_PLUS_1S)); // full: scored at once, its deadline now stale
        send(click("carol").at(T0_PLUS_2S));
        harness.h.setProcessingTime(harness.h.getProcessingTime() + 1);
        harness.h.processWatermark(ms(T0_PLUS_2S));

        harness.h.setProcessingTime(harness.h.getProcessingTime() + MAX_DELAY.toMillis() - 1);
        assertThat(scored()).extracting(s -> s.userId).containsExactly(ALICE, BOB);
        harness.h.setProcessingTime(harness.h.getProcessingTime() + 1);
        assertThat(scored()).extracting(s -> s.userId).containsExactly(ALICE, BOB, "carol");
    }

    /** User timers fire when the held watermark is let through, after the rows before it: not when it arrives. */
    @BothModes
    void userTimersFireOnlyWhenTheHeldWatermarkIsLetThrough(Scoring mode) throws Exception {
        open(settings(mode).horizonMs(ONE_HOUR).modelStateTtlMs(0).cooldownMs(0));
        send(click(ALICE).at(T0));
        watermark(ms(T0));
        send(click(BOB).at(T0_PLUS_1H));

        harness.h.processWatermark(ms(T0_PLUS_1H));
        assertThat(scored()).extracting(s -> s.userId).containsExactly(ALICE);
        assertThat(harness.stored(ALICE)).as("alice's horizon has passed, but the watermark is held").isNotNull();

        harness.deadline();
        assertThat(scored()).extracting(s -> s.userId).containsExactly(ALICE, BOB);
        assertThat(harness.stored(ALICE)).isNull();
        assertThat(harness.h.getOutput()).last().isEqualTo(new Watermark(ms(T0_PLUS_1H)));
    }

    /** Two events of one user ready at once take two successive batches, in order, even with room in the first. */
    @BothModes
    void twoReadyEventsOfOneUserGoToTwoSuccessiveBatchesInOrder(Scoring mode) throws Exception {
        open(settings(mode).maxBatch(2));
        List<Clicks.Builder> alice = List.of(click(ALICE).item("a1").at(T0), click(ALICE).item("a2").at(T0_PLUS_1S));
        harness.sendAll(alice);
        send(click(BOB).at(T0_PLUS_2S));

        harness.h.processWatermark(ms(T0_PLUS_2S));
        assertThat(scored()).as("alice's first and bob's fill a batch").extracting(s -> s.itemId + "@" + s.userId)
                .containsExactly("a1@" + ALICE, "i1@" + BOB);

        harness.deadline();
        assertThat(scored()).extracting(s -> s.itemId).containsExactly("a1", "i1", "a2");
        assertMatchesReference(alice, harness.scored(ALICE));

        harness.close();
        harness = ScoringHarness.open(settings(mode).maxBatch(2).build());
        harness.sendAll(alice);
        harness.h.processWatermark(ms(T0_PLUS_1S));
        assertThat(scored()).as("room for two rows, but one per user").isEmpty();
        harness.deadline();
        assertThat(scored()).extracting(s -> s.itemId).containsExactly("a1");
        harness.deadline();
        assertThat(scored()).extracting(s -> s.itemId).containsExactly("a1", "a2");
        assertMatchesReference(alice, scored());
    }

    // ---------------------------------------------------------------- construction

    @Test
    void settingsAreCheckedOnTheClient(@TempDir Path tmp) {
        assertThatThrownBy(() -> settings(Scoring.WINDOWED).maxEvents(spec.maxEvents() + 1).build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(Integer.toString(spec.maxEvents()));
        assertThatThrownBy(() -> settings(Scoring.WINDOWED).maxEvents(0).build())
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> settings(Scoring.WINDOWED).horizonMs(0).build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("horizon");
        assertThatThrownBy(() -> settings(Scoring.WINDOWED).maxBatch(0).build())
                .isInstanceOf(IllegalArgumentException.class);
        ScoringSettings ok = settings(Scoring.WINDOWED).build();
        assertThatThrownBy(() -> new ScoringSettings(ok.bundle(), ok.scoring(), ok.maxEvents(), ok.horizonMs(),
                ok.stateTtl(), 0, 1, 64, 5, new dev.seqscore.alerts.AlertPolicy(List.of(ok.alerts().rules.get(0)),
                        0, "v"), 0))
                .hasMessageContaining("1 alert rules for the 2 outputs");
        var withoutReasons = ScoringFixture.derivedBundle(tmp, s -> s.remove("reasons"));
        assertThatThrownBy(() -> settings(Scoring.WINDOWED).bundle(withoutReasons).reasonTop(3).build())
                .hasMessageContaining("defines no reason groups");
    }

    // ---------------------------------------------------------------- helpers

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

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }
}

package dev.seqscore.scoring;

import static dev.seqscore.scoring.ScoringFixture.settings;
import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.BOB;
import static dev.seqscore.testing.Clicks.T0;
import static dev.seqscore.testing.Clicks.click;
import static dev.seqscore.testing.Clicks.ms;
import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.avro.ErasureAudit;
import dev.seqscore.events.InputRecord;
import dev.seqscore.features.Scoring;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Erasure requests in the scorer, with both models: a request clears the user's value and its one timer, drops its
 * events still waiting for the watermark, scores first a row it has in the open batch, leaves other users alone,
 * is answered also for a user never seen, and the user's next click scores as a new user's; a checkpoint after the
 * request holds nothing of the user.
 */
class ScoringOperatorErasureTest {

    private static InputRecord request(String user, long offset) {
        return InputRecord.erasureRequest(user, null, "erasures", 0, offset, ms(T0), null);
    }

    private static List<ErasureAudit> answers(ScoringHarness h) {
        List<ErasureAudit> out = new ArrayList<>();
        var records = h.h.getSideOutput(ScoringOperator.ERASURES);
        if (records != null) {
            for (StreamRecord<ErasureAudit> r : records) {
                out.add(r.getValue());
            }
        }
        return out;
    }

    @ParameterizedTest
    @EnumSource(Scoring.class)
    void aRequestClearsTheUsersValueTimerAndWaitingEventsAndNothingElse(Scoring scoring) throws Exception {
        ScoringFixture.assumeServes(scoring);
        try (ScoringHarness h = ScoringHarness.open(settings(scoring).build())) {
            for (int i = 0; i < 4; i++) {
                h.send(click(ALICE).item("a" + i).at(T0.plus(Duration.ofMinutes(i))));
                h.send(click(BOB).item("b" + i).at(T0.plus(Duration.ofMinutes(i))));
            }
            h.watermark(ms(T0.plus(Duration.ofMinutes(2))));
            // Alice's and Bob's last clicks still wait for the watermark.
            assertThat(h.h.numEventTimeTimers()).isEqualTo(2);

            h.h.processElement(new StreamRecord<>(request(ALICE, 7)));

            assertThat(h.stored(ALICE)).isNull();
            assertThat(h.stored(BOB)).isNotNull();
            assertThat(h.h.numEventTimeTimers()).as("Bob's timer only").isEqualTo(1);
            List<ErasureAudit> answers = answers(h);
            assertThat(answers).hasSize(1);
            assertThat(answers.get(0).getUserId()).isEqualTo(ALICE);
            assertThat(answers.get(0).getStateFound()).isTrue();
            assertThat(answers.get(0).getEventsDropped()).isEqualTo(1);
            assertThat(answers.get(0).getSourceOffset()).isEqualTo(7);

            h.watermark(ms(T0.plus(Duration.ofMinutes(10))));
            assertThat(h.scored(ALICE)).as("the dropped click is never scored").hasSize(3);
            assertThat(h.scored(BOB)).hasSize(4);
        }
    }

    @ParameterizedTest
    @EnumSource(Scoring.class)
    void aRequestForAUserNeverSeenIsAnsweredWithNothingFound(Scoring scoring) throws Exception {
        ScoringFixture.assumeServes(scoring);
        try (ScoringHarness h = ScoringHarness.open(settings(scoring).build())) {
            h.h.processElement(new StreamRecord<>(request("nobody", 0)));

            assertThat(answers(h)).singleElement().satisfies(a -> {
                assertThat(a.getUserId()).isEqualTo("nobody");
                assertThat(a.getStateFound()).isFalse();
                assertThat(a.getEventsDropped()).isZero();
            });
            assertThat(h.h.numKeyedStateEntries()).isZero();
        }
    }

    @ParameterizedTest
    @EnumSource(Scoring.class)
    void aRowInTheOpenBatchIsScoredBeforeItsUserIsErased(Scoring scoring) throws Exception {
        ScoringFixture.assumeServes(scoring);
        try (ScoringHarness h = ScoringHarness.open(settings(scoring).build())) {
            h.send(click(ALICE).item("a").at(T0));
            // The watermark makes the click ready; its batch waits for the deadline.
            h.h.processWatermark(ms(T0));
            assertThat(h.scored()).isEmpty();

            h.h.processElement(new StreamRecord<>(request(ALICE, 0)));

            assertThat(h.scored(ALICE)).as("the click came before the request").hasSize(1);
            assertThat(h.stored(ALICE)).as("and its state went with the request").isNull();
            assertThat(h.h.numEventTimeTimers()).isZero();
            assertThat(answers(h)).singleElement().satisfies(a -> assertThat(a.getStateFound()).isTrue());
        }
    }

    @ParameterizedTest
    @EnumSource(Scoring.class)
    void theNextClickOfAnErasedUserScoresAsANewUsers(Scoring scoring) throws Exception {
        ScoringFixture.assumeServes(scoring);
        List<Float> fresh;
        try (ScoringHarness h = ScoringHarness.open(settings(scoring).build())) {
            h.send(click("newcomer").item("x").at(T0.plus(Duration.ofHours(2))));
            h.watermark(ms(T0.plus(Duration.ofHours(3))));
            fresh = scores(h.scored("newcomer").get(0));
        }
        try (ScoringHarness h = ScoringHarness.open(settings(scoring).build())) {
            for (int i = 0; i < 5; i++) {
                h.send(click(ALICE).type(i == 2 ? "cart" : "view").item("a" + i).at(T0.plus(Duration.ofMinutes(i))));
            }
            h.watermark(ms(T0.plus(Duration.ofMinutes(30))));
            h.h.processElement(new StreamRecord<>(request(ALICE, 0)));
            h.send(click(ALICE).item("x").at(T0.plus(Duration.ofHours(2))));
            h.watermark(ms(T0.plus(Duration.ofHours(3))));

            ScoredEvent after = h.scored(ALICE).get(5);
            assertThat(after.windowLength).isEqualTo(1);
            assertThat(scores(after)).isEqualTo(fresh);
        }
    }

    @ParameterizedTest
    @EnumSource(Scoring.class)
    void aCheckpointAfterTheRequestHoldsNothingOfTheUser(Scoring scoring) throws Exception {
        ScoringFixture.assumeServes(scoring);
        OperatorSubtaskState snapshot;
        try (ScoringHarness h = ScoringHarness.open(settings(scoring).build())) {
            h.send(click(ALICE).item("a").at(T0));
            h.send(click(ALICE).item("b").at(T0.plus(Duration.ofMinutes(1))));
            h.watermark(ms(T0));
            // A checkpoint with Alice's waiting click in keyed state, then the request, then the next checkpoint.
            h.checkpoint(1);
            h.h.processElement(new StreamRecord<>(request(ALICE, 0)));
            snapshot = h.checkpoint(2);
        }
        try (ScoringHarness restored = ScoringHarness.restore(settings(scoring).build(), snapshot)) {
            assertThat(restored.stored(ALICE)).isNull();
            assertThat(restored.h.numKeyedStateEntries()).isZero();
            assertThat(restored.h.numEventTimeTimers()).isZero();
            restored.watermark(ms(T0.plus(Duration.ofDays(1))));
            assertThat(restored.scored()).as("no waiting click came back").isEmpty();
        }
    }

    private static List<Float> scores(ScoredEvent s) {
        List<Float> out = new ArrayList<>();
        for (float f : s.scores) {
            out.add(f);
        }
        return out;
    }
}

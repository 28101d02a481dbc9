package dev.seqscore.scoring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.seqscore.features.Lifetime;
import dev.seqscore.features.PackedWindow;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * {@link UserState}, the one value per user: a new user's layout; every field written and read back through the
 * stored bytes; a value of another layout (state size, alert types, vocabulary, or the windowed model's no state)
 * converted with what still applies kept as documented; clearing the window and growing it keep everything before it.
 */
class UserStateTest {
    private static final int VOCABULARY = 5;
    private static final int BUY = 4;
    private static final long HORIZON = 3_600_000L;
    private static final long T0 = 1_511_650_800_000L;
    private static final long TAG = 0x1234_5678_9abc_def0L;

    private static UserState layout(int vocabulary, int alertTypes, int stateSize) {
        return new UserState(new PackedWindow(10, HORIZON, vocabulary), 10, HORIZON, new Lifetime(vocabulary, BUY, 0),
                vocabulary, alertTypes, stateSize);
    }

    /** A user with three events, an alert time per type, a state written by {@code TAG} (if any) and a timer. */
    private static byte[] aUser(int vocabulary, int alertTypes, int stateSize) {
        UserState u = layout(vocabulary, alertTypes, stateSize).wrap(null);
        Lifetime record = new Lifetime(vocabulary, BUY, 0);
        for (int i = 0; i < 3; i++) {
            u.window().append("item" + i, "cat", 1 + i, T0 + 1000L * i);
            record.apply(T0 + 1000L * i, 1 + i);
        }
        u.writeLifetime(record);
        for (int a = 0; a < alertTypes; a++) {
            u.lastAlert(a, T0 + 100 * a);
        }
        if (stateSize > 0) {
            u.writeState(TAG, state(stateSize), 0); // the windowed model (no state) never writes one
        }
        u.timerAt(T0 + HORIZON);
        return u.bytes();
    }

    private static float[] state(int size) {
        float[] s = new float[size];
        for (int i = 0; i < size; i++) {
            s[i] = (i % 2 == 0 ? 1 : -1) * (i + 0.25f);
        }
        return s;
    }

    private static float[] readState(UserState u, long tag, int size) {
        float[] out = new float[size + 2];
        Arrays.fill(out, 99f);
        u.readState(tag, out, 1);
        assertThat(out[0]).as("before the state's range").isEqualTo(99f);
        assertThat(out[size + 1]).as("after it").isEqualTo(99f);
        return Arrays.copyOfRange(out, 1, size + 1);
    }

    private static Lifetime lifetime(UserState u, int vocabulary) {
        Lifetime l = new Lifetime(vocabulary, BUY, 0);
        u.readLifetime(l);
        return l;
    }

    private static void assertWindowOfThree(UserState u) {
        PackedWindow w = u.window();
        assertThat(w.size()).isEqualTo(3);
        for (int i = 0; i < 3; i++) {
            assertThat(w.eventTime(i)).isEqualTo(T0 + 1000L * i);
            assertThat(w.typeId(i)).isEqualTo(1 + i);
        }
    }

    @Test
    void aNewUserIsAHeaderAnEmptyRecordNoAlertsNoStateNoTimerAndNoWindow() {
        UserState u = layout(VOCABULARY, 2, 4).wrap(null);

        assertThat(u.created()).isTrue();
        assertThat(u.prefixBytes()).isEqualTo(UserState.HEADER_BYTES + Lifetime.bytes(VOCABULARY) + 2 * Long.BYTES
                + 4 * Float.BYTES);
        assertThat(u.bytes()).hasSize(u.prefixBytes());
        assertThat(u.bytes()[0]).isEqualTo(UserState.FORMAT);
        assertThat(u.window().isEmpty()).isTrue();
        assertThat(lifetime(u, VOCABULARY).isEmpty()).isTrue();
        assertThat(u.lastAlert(0)).isEqualTo(UserState.NO_ALERT);
        assertThat(u.lastAlert(1)).isEqualTo(UserState.NO_ALERT);
        assertThat(u.latestAlert()).isEqualTo(UserState.NO_ALERT);
        assertThat(u.timerAt()).isEqualTo(UserState.NO_TIMER);
        assertThat(u.stateTag()).isZero();
        assertThat(readState(u, TAG, 4)).containsOnly(0f);

        // Each new user gets an array of its own.
        u.timerAt(T0);
        assertThat(layout(VOCABULARY, 2, 4).wrap(null).timerAt()).isEqualTo(UserState.NO_TIMER);
        UserState same = layout(VOCABULARY, 2, 4);
        byte[] first = same.wrap(null).bytes();
        same.timerAt(T0);
        assertThat(same.wrap(null).bytes()).isNotSameAs(first);
        assertThat(same.timerAt()).isEqualTo(UserState.NO_TIMER);
    }

    @Test
    void everyFieldRoundTripsThroughTheStoredBytes() {
        byte[] stored = aUser(VOCABULARY, 2, 4);

        UserState u = layout(VOCABULARY, 2, 4).wrap(stored);

        assertThat(u.created()).isFalse();
        assertThat(u.bytes()).as("the same layout is read in place").isSameAs(stored);
        assertWindowOfThree(u);
        Lifetime l = lifetime(u, VOCABULARY);
        assertThat(l.first()).isEqualTo(T0);
        assertThat(l.last()).isEqualTo(T0 + 2000);
        assertThat(l.count(1) + l.count(2) + l.count(3)).isEqualTo(3);
        assertThat(u.lastAlert(0)).isEqualTo(T0);
        assertThat(u.lastAlert(1)).isEqualTo(T0 + 100);
        assertThat(u.latestAlert()).isEqualTo(T0 + 100);
        assertThat(u.stateTag()).isEqualTo(TAG);
        assertThat(readState(u, TAG, 4)).containsExactly(state(4));
        assertThat(readState(u, TAG + 1, 4)).as("another model's state reads as zeros").containsOnly(0f);
        assertThat(readState(u, 0, 4)).as("no model").containsOnly(0f);
        assertThat(u.timerAt()).isEqualTo(T0 + HORIZON);
    }

    @Test
    void resetStateZerosTheStateAndItsTagAndKeepsTheRest() {
        UserState u = layout(VOCABULARY, 2, 4).wrap(aUser(VOCABULARY, 2, 4));

        u.resetState();

        assertThat(u.stateTag()).isZero();
        assertThat(readState(u, TAG, 4)).containsOnly(0f);
        assertWindowOfThree(u);
        assertThat(lifetime(u, VOCABULARY).last()).isEqualTo(T0 + 2000);
        assertThat(u.lastAlert(1)).isEqualTo(T0 + 100);
        assertThat(u.timerAt()).isEqualTo(T0 + HORIZON);
    }

    @Test
    void anotherStateSizeKeepsAllButTheStateWhoseTagTellsAnotherModelWroteIt() {
        UserState u = layout(VOCABULARY, 2, 8).wrap(aUser(VOCABULARY, 2, 4));

        assertThat(u.created()).isFalse();
        assertThat(u.bytes()).hasSize(u.prefixBytes() + PackedWindow.HEADER_BYTES + 4 * PackedWindow.COMPACT_SLOT_BYTES);
        assertWindowOfThree(u);
        assertThat(lifetime(u, VOCABULARY).first()).isEqualTo(T0);
        assertThat(u.lastAlert(0)).isEqualTo(T0);
        assertThat(u.lastAlert(1)).isEqualTo(T0 + 100);
        assertThat(u.timerAt()).isEqualTo(T0 + HORIZON);
        assertThat(u.stateTag()).as("the tag, so the caller can count a restart").isEqualTo(TAG);
        assertThat(readState(u, TAG, 8)).as("but not the state, of another size").containsOnly(0f);
    }

    @Test
    void anotherNumberOfAlertTypesDropsTheAlertTimesAndKeepsTheRest() {
        UserState u = layout(VOCABULARY, 3, 4).wrap(aUser(VOCABULARY, 2, 4));

        assertThat(u.lastAlert(0)).isEqualTo(UserState.NO_ALERT);
        assertThat(u.lastAlert(1)).isEqualTo(UserState.NO_ALERT);
        assertThat(u.lastAlert(2)).isEqualTo(UserState.NO_ALERT);
        assertWindowOfThree(u);
        assertThat(lifetime(u, VOCABULARY).first()).isEqualTo(T0);
        assertThat(u.stateTag()).isEqualTo(TAG);
        assertThat(readState(u, TAG, 4)).containsExactly(state(4));
        assertThat(u.timerAt()).isEqualTo(T0 + HORIZON);
    }

    @Test
    void anotherVocabularyDropsTheLifetimeRecordAndKeepsTheRest() {
        UserState u = layout(VOCABULARY + 1, 2, 4).wrap(aUser(VOCABULARY, 2, 4));

        assertThat(lifetime(u, VOCABULARY + 1).isEmpty()).isTrue();
        assertWindowOfThree(u);
        assertThat(u.lastAlert(1)).isEqualTo(T0 + 100);
        assertThat(u.stateTag()).isEqualTo(TAG);
        assertThat(readState(u, TAG, 4)).containsExactly(state(4));
        assertThat(u.timerAt()).isEqualTo(T0 + HORIZON);
    }

    @Test
    void aValueTheWindowedModelWroteGoesOnWithNoState() {
        UserState u = layout(VOCABULARY, 2, 4).wrap(aUser(VOCABULARY, 2, 0));

        assertWindowOfThree(u);
        assertThat(lifetime(u, VOCABULARY).first()).isEqualTo(T0);
        assertThat(u.lastAlert(0)).isEqualTo(T0);
        assertThat(u.stateTag()).as("the windowed model writes no state").isZero();
        assertThat(readState(u, TAG, 4)).containsOnly(0f);

        UserState back = layout(VOCABULARY, 2, 0).wrap(aUser(VOCABULARY, 2, 4));
        assertWindowOfThree(back);
        assertThat(back.prefixBytes()).isEqualTo(UserState.HEADER_BYTES + Lifetime.bytes(VOCABULARY) + 16);
    }

    @Test
    void clearingTheWindowKeepsEverythingBeforeIt() {
        UserState u = layout(VOCABULARY, 2, 4).wrap(aUser(VOCABULARY, 2, 4));

        u.clearWindow();

        assertThat(u.window().isEmpty()).isTrue();
        assertThat(u.bytes()).hasSize(u.prefixBytes());
        UserState again = layout(VOCABULARY, 2, 4).wrap(u.bytes());
        assertThat(again.window().isEmpty()).isTrue();
        assertThat(lifetime(again, VOCABULARY).last()).isEqualTo(T0 + 2000);
        assertThat(again.lastAlert(1)).isEqualTo(T0 + 100);
        assertThat(again.stateTag()).isEqualTo(TAG);
        assertThat(readState(again, TAG, 4)).containsExactly(state(4));
        assertThat(again.timerAt()).isEqualTo(T0 + HORIZON);

        again.window().append("back", "cat", 1, T0 + 5000);
        UserState last = layout(VOCABULARY, 2, 4).wrap(again.bytes());
        assertThat(last.window().size()).isEqualTo(1);
        assertThat(readState(last, TAG, 4)).containsExactly(state(4));
    }

    @Test
    void aGrowingWindowKeepsEverythingBeforeIt() {
        UserState u = layout(VOCABULARY, 2, 4).wrap(aUser(VOCABULARY, 2, 4));
        byte[] before = u.bytes();
        for (int i = 3; i < 10; i++) {
            u.window().append("item" + i, "cat", 1, T0 + 1000L * i);
        }
        assertThat(u.bytes()).as("grown into a new array").isNotSameAs(before);

        UserState again = layout(VOCABULARY, 2, 4).wrap(u.bytes());
        assertThat(again.window().size()).isEqualTo(10);
        assertThat(lifetime(again, VOCABULARY).first()).isEqualTo(T0);
        assertThat(again.lastAlert(0)).isEqualTo(T0);
        assertThat(readState(again, TAG, 4)).containsExactly(state(4));
        assertThat(again.timerAt()).isEqualTo(T0 + HORIZON);
    }

    @Test
    void bytesThatAreNotAUserStateAreRefused() {
        UserState u = layout(VOCABULARY, 2, 4);
        byte[] good = aUser(VOCABULARY, 2, 4);

        byte[] otherFormat = good.clone();
        otherFormat[0] = 7;
        assertThatThrownBy(() -> u.wrap(otherFormat)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("format byte 7");
        assertThatThrownBy(() -> u.wrap(new byte[3])).isInstanceOf(IllegalStateException.class);
        byte[] cut = Arrays.copyOf(good, UserState.HEADER_BYTES + 2);
        assertThatThrownBy(() -> u.wrap(cut)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("does not match");
    }
}

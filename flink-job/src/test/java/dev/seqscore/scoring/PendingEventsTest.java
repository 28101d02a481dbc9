package dev.seqscore.scoring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.events.InputRecord;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@link PendingEvents}: the watermark releases waiting events in (event time, arrival) order; ready users take turns,
 * one event each per turn, and a user leaves the turns with its last ready event; what a checkpoint keeps is each
 * user's waiting events in the order they will be released; a user's events can be dropped, waiting or ready.
 */
class PendingEventsTest {
    private final PendingEvents pending = new PendingEvents();

    private static InputRecord event(String user, long t, String item) {
        InputRecord r = new InputRecord();
        r.userId = user;
        r.eventTime = t;
        r.itemId = item;
        r.eventType = "view";
        return r;
    }

    private void add(String user, long t, String item) {
        pending.add(event(user, t, item));
    }

    /** Every ready event, taking turns as the operator does: the next user, its next event. */
    private List<String> takeAll() {
        List<String> out = new ArrayList<>();
        while (pending.hasReady()) {
            String u = pending.nextReadyUser();
            out.add(u + ":" + pending.takeReady(u).itemId);
        }
        return out;
    }

    @Test
    void theWatermarkReleasesWhatItPassesInTimeThenArrivalOrder() {
        add("a", 30, "a30");
        add("a", 10, "a10-first");
        add("a", 20, "a20");
        add("a", 10, "a10-second");
        add("a", 40, "a40");

        assertThat(pending.hasReady()).isFalse();
        assertThat(pending.release(9)).isZero();
        assertThat(pending.release(30)).as("at or before the watermark").isEqualTo(4);
        assertThat(pending.waiting()).isEqualTo(1);

        assertThat(takeAll()).containsExactly("a:a10-first", "a:a10-second", "a:a20", "a:a30");
        assertThat(pending.isEmpty()).isFalse();
        assertThat(pending.release(40)).isEqualTo(1);
        assertThat(takeAll()).containsExactly("a:a40");
        assertThat(pending.isEmpty()).isTrue();
    }

    @Test
    void readyUsersTakeTurnsOneEventEachAndLeaveWithTheirLast() {
        add("b", 2, "b1");
        add("a", 1, "a1");
        add("c", 3, "c1");
        add("a", 4, "a2");
        add("c", 5, "c2");
        add("a", 6, "a3");
        pending.release(6);

        assertThat(pending.readyUsers()).isEqualTo(3);
        // First turns in the order of each user's first released event.
        assertThat(takeAll()).containsExactly("a:a1", "b:b1", "c:c1", "a:a2", "c:c2", "a:a3");
        assertThat(pending.readyUsers()).isZero();
        assertThat(pending.nextReadyUser()).isNull();
    }

    @Test
    void aUserWhoseTurnIsSkippedGoesToTheBackKeepingItsEvents() {
        add("a", 1, "a1");
        add("b", 2, "b1");
        add("a", 3, "a2");
        pending.release(3);

        // The operator skips a user already in the batch: its turn passes, its events stay.
        assertThat(pending.nextReadyUser()).isEqualTo("a");
        assertThat(pending.nextReadyUser()).isEqualTo("b");
        assertThat(pending.takeReady("b").itemId).isEqualTo("b1");
        assertThat(pending.nextReadyUser()).isEqualTo("a");
        assertThat(pending.takeReady("a").itemId).isEqualTo("a1");
        assertThat(pending.readyUsers()).isEqualTo(1);
        assertThat(takeAll()).containsExactly("a:a2");
    }

    @Test
    void waitingByUserIsEachUsersWaitingEventsInReleaseOrder() {
        add("a", 3, "a3");
        add("b", 1, "b1");
        add("a", 1, "a1-first");
        add("a", 1, "a1-second");
        add("b", 2, "b2");
        add("c", 9, "c9");

        Map<String, List<InputRecord>> all = pending.waitingByUser();
        assertThat(all.keySet()).as("users in the order of their first waiting event").containsExactly("b", "a", "c");
        assertThat(all.get("a")).extracting(r -> r.itemId).containsExactly("a1-first", "a1-second", "a3");
        assertThat(all.get("b")).extracting(r -> r.itemId).containsExactly("b1", "b2");

        pending.release(1);
        Map<String, List<InputRecord>> waiting = pending.waitingByUser();
        assertThat(waiting.keySet()).as("ready events are no longer waiting").containsExactly("b", "a", "c");
        assertThat(waiting.get("a")).extracting(r -> r.itemId).containsExactly("a3");
        assertThat(waiting.get("b")).extracting(r -> r.itemId).containsExactly("b2");
        assertThat(pending.waiting()).isEqualTo(3);
        assertThat(takeAll()).hasSize(3);
        pending.release(9);
        assertThat(pending.waitingByUser()).isEmpty();
    }

    @Test
    void removeUserDropsItsWaitingAndReadyEventsAndItsTurn() {
        add("a", 1, "a1");
        add("b", 1, "b1");
        add("a", 2, "a2");
        add("a", 5, "a5");
        add("b", 5, "b5");
        pending.release(2);

        assertThat(pending.removeUser("a")).isEqualTo(3);
        assertThat(pending.removeUser("nobody")).isZero();
        assertThat(pending.readyUsers()).isEqualTo(1);
        assertThat(pending.waitingByUser()).containsOnlyKeys("b");
        assertThat(takeAll()).containsExactly("b:b1");
        pending.release(5);
        assertThat(takeAll()).containsExactly("b:b5");
        assertThat(pending.isEmpty()).isTrue();
    }
}

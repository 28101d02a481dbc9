package dev.seqscore.tools.demo;

import dev.seqscore.avro.ClickEvent;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;

/**
 * The Taobao user sample (9 days of full histories) in event-time order, replayed without end: each round shifts
 * every time by a whole number of days past the previous round, so hours of day stay as they were and the previous
 * round's windows have expired, and gives its users fresh ids ({@link #ROUND_ID_STEP} apart), so no window mixes two
 * rounds. Warm windows, as in validation, after each round's first day. Ends before any click would pass {@code until}:
 * the job dead-letters clicks from the future.
 */
final class SampleReplay implements Iterator<ClickEvent> {
    /** Above every Taobao user id (they end near 1.02 million) and the simulator's ids. */
    static final long ROUND_ID_STEP = 10_000_000L;
    private static final Duration DAY = Duration.ofDays(1);

    private final List<ClickEvent> round;
    private final Duration roundShift;
    private final Instant until;
    private int index;
    private int roundNumber;

    /**
     * @param clicks one round: valid clicks with numeric user ids, in any order
     * @param until  no click is replayed at or after this time
     */
    SampleReplay(List<ClickEvent> clicks, Instant until) {
        this(clicks, null, until);
    }

    /**
     * @param from the first round starts at its first click at or after this time (the earlier ones are the
     *             history a warm start bootstrapped the job's state from); null: at its first click
     */
    SampleReplay(List<ClickEvent> clicks, Instant from, Instant until) {
        this.until = until;
        if (clicks.isEmpty()) {
            throw new IllegalArgumentException("the sample has no valid clicks to replay");
        }
        this.round = clicks.stream().sorted(Comparator.comparing(ClickEvent::getEventTime)).toList();
        Duration span = Duration.between(round.get(0).getEventTime(), round.get(round.size() - 1).getEventTime());
        // Whole days, with at least one day of silence (the model's horizon) before the next round starts.
        this.roundShift = DAY.multipliedBy(span.toDays() + 2);
        while (from != null && index < round.size() && round.get(index).getEventTime().isBefore(from)) {
            index++;
        }
    }

    /** The first round's clicks before {@code from}, in time order: a warm start's history. */
    static List<ClickEvent> before(List<ClickEvent> clicks, Instant from) {
        return clicks.stream().filter(c -> c.getEventTime().isBefore(from))
                .sorted(Comparator.comparing(ClickEvent::getEventTime)).toList();
    }

    /** Clicks per round. */
    int roundSize() {
        return round.size();
    }

    /** The round being replayed, from 0. */
    int roundNumber() {
        return roundNumber;
    }

    @Override
    public boolean hasNext() {
        int r = index == round.size() ? roundNumber + 1 : roundNumber;
        ClickEvent next = round.get(index == round.size() ? 0 : index);
        return next.getEventTime().plus(roundShift.multipliedBy(r)).isBefore(until);
    }

    @Override
    public ClickEvent next() {
        if (!hasNext()) {
            throw new java.util.NoSuchElementException("the replay reached " + until);
        }
        if (index == round.size()) {
            index = 0;
            roundNumber++;
        }
        ClickEvent original = round.get(index++);
        if (roundNumber == 0) {
            return original;
        }
        Instant shifted = original.getEventTime().plus(roundShift.multipliedBy(roundNumber));
        String user = Long.toString(Long.parseLong(original.getUserId()) + ROUND_ID_STEP * roundNumber);
        return ClickEvent.newBuilder(original).setUserId(user).setEventTime(shifted).build();
    }
}

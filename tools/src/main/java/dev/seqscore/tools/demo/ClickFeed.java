package dev.seqscore.tools.demo;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.offline.files.EventFileReader;
import dev.seqscore.offline.files.FileRecord;
import dev.seqscore.tools.sim.TrafficSimulator;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.stream.Stream;

/**
 * The demo's endless input: the 9-day user sample replayed in event-time order, round after round; real time-ordered
 * clicks with simulated users interleaved by event time; or the simulator alone. Every source is in time order and the
 * merge keeps it, so the job's watermarks see one coherent clock and nothing is late because of the mix. Simulated
 * user ids are offset past the real ones ({@link #SIMULATED_ID_BASE}), so a user is either real or simulated.
 *
 * <p>Not thread-safe for iteration (one producer thread); its counters may be read from any thread.
 */
final class ClickFeed implements Iterator<ClickEvent> {
    /** Above every Taobao user id (they end near 1.02 million). */
    static final long SIMULATED_ID_BASE = 2_000_001L;

    private final Iterator<ClickEvent> real;
    /** Null when the real clicks never run out (the sample's replay). */
    private final TrafficSimulator sim;
    private ClickEvent nextReal;
    private ClickEvent nextSim;
    private final DistinctCounter realUsers = new DistinctCounter();
    private volatile long realSent;
    private volatile long simulatedSent;
    private volatile int realUserCount;
    private volatile int simulatedUserCount;

    private ClickFeed(Iterator<ClickEvent> real, TrafficSimulator sim) {
        this.real = real;
        this.sim = sim;
        this.nextReal = this.real.hasNext() ? this.real.next() : null;
        this.nextSim = sim == null ? null : sim.next();
    }

    /** The sample alone, replayed without end (see {@link SampleReplay}). */
    static ClickFeed replayed(SampleReplay replay) {
        return new ClickFeed(replay, null);
    }

    /** The simulator alone. */
    static ClickFeed simulated(TrafficSimulator sim) {
        return new ClickFeed(List.<ClickEvent>of().iterator(), sim);
    }

    /**
     * Real clicks (in time order) with the simulator's interleaved; give the simulator the first real click's time as
     * its start, so that both begin together.
     */
    static ClickFeed mixed(List<ClickEvent> real, TrafficSimulator sim) {
        for (int i = 1; i < real.size(); i++) {
            if (real.get(i).getEventTime().isBefore(real.get(i - 1).getEventTime())) {
                throw new IllegalArgumentException("real clicks are not in time order at #" + i);
            }
        }
        return new ClickFeed(real.iterator(), sim);
    }

    /** The valid rows of a Taobao file, stably sorted by time (the time-ordered extract already is). */
    static List<ClickEvent> readTaobao(Path file) throws IOException {
        List<ClickEvent> events = new ArrayList<>();
        try (Stream<FileRecord> lines = EventFileReader.lines(file, EventFileReader.Format.TAOBAO)) {
            lines.filter(FileRecord::isValid).forEach(r -> events.add(r.event()));
        }
        events.sort(Comparator.comparing(ClickEvent::getEventTime));
        return events;
    }

    /** With a simulator, always true: after the real clicks run out, the simulator goes on. */
    @Override
    public boolean hasNext() {
        return sim != null || nextReal != null;
    }

    @Override
    public ClickEvent next() {
        ClickEvent out;
        // Ties go to the real click: the order between equal times is arbitrary, but fixed.
        if (sim == null && nextReal == null) {
            throw new java.util.NoSuchElementException("no more clicks");
        }
        if (nextReal != null && (sim == null || !nextReal.getEventTime().isAfter(nextSim.getEventTime()))) {
            out = nextReal;
            nextReal = real.hasNext() ? real.next() : null;
            realUsers.add(out.getUserId().getBytes(StandardCharsets.UTF_8));
            realUserCount = realUsers.size();
            realSent++;
        } else {
            out = nextSim;
            nextSim = sim.next();
            simulatedUserCount = sim.distinctUsers();
            simulatedSent++;
        }
        return out;
    }

    long realSent() {
        return realSent;
    }

    long simulatedSent() {
        return simulatedSent;
    }

    int realUsers() {
        return realUserCount;
    }

    /** Simulated users seen so far, counting the one click the merge looks ahead. */
    int simulatedUsers() {
        return simulatedUserCount;
    }
}

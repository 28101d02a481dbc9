package dev.seqscore.tools.demo;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.EventFileReader;
import dev.seqscore.events.FileRecord;
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
 * The demo's endless input: real time-ordered clicks with simulated users interleaved by event time, or the simulator
 * alone. Both sources are in time order and the merge keeps it, so the job's watermarks see one coherent clock and
 * nothing is late because of the mix. Simulated user ids are offset past the real ones ({@link #SIMULATED_ID_BASE}),
 * so a user is either real or simulated, never both.
 *
 * <p>Not thread-safe for iteration (one producer thread); its counters may be read from any thread.
 */
final class ClickFeed implements Iterator<ClickEvent> {
    /** Above every Taobao user id (they end near 1.02 million). */
    static final long SIMULATED_ID_BASE = 2_000_001L;

    private final Iterator<ClickEvent> real;
    private final TrafficSimulator sim;
    private ClickEvent nextReal;
    private ClickEvent nextSim;
    private final DistinctCounter realUsers = new DistinctCounter();
    private volatile long realSent;
    private volatile long simulatedSent;
    private volatile int realUserCount;
    private volatile int simulatedUserCount;

    private ClickFeed(List<ClickEvent> real, TrafficSimulator sim) {
        this.real = real.iterator();
        this.sim = sim;
        this.nextReal = this.real.hasNext() ? this.real.next() : null;
        this.nextSim = sim.next();
    }

    /** The simulator alone. */
    static ClickFeed simulated(TrafficSimulator sim) {
        return new ClickFeed(List.of(), sim);
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
        return new ClickFeed(real, sim);
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

    /** Always true: after the real clicks run out, the simulator goes on. */
    @Override
    public boolean hasNext() {
        return true;
    }

    @Override
    public ClickEvent next() {
        ClickEvent out;
        // Ties go to the real click: the order between equal times is arbitrary, but fixed.
        if (nextReal != null && !nextReal.getEventTime().isAfter(nextSim.getEventTime())) {
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

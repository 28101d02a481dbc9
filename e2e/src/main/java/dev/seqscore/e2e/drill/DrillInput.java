package dev.seqscore.e2e.drill;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.offline.files.EventFileReader;
import dev.seqscore.offline.files.FileRecord;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The drill's input: the valid rows of a Taobao file for its first {@code users} users, in event-time order (ties in
 * file order), each with the partition it is sent to, and then one flush event per partition.
 *
 * <p>Why the flush events: the job holds each event until the watermark passes it, and the watermark is the minimum
 * over the partitions, so without a much newer event in every partition the last events would wait forever. The
 * flush events are sent last, an hour of event time after the data, to users of their own ({@code flush-<p>}); they
 * release every real event and are themselves never scored live. They are part of the backtest's input too, so that
 * both see the same events; their own scores are left out of the expected set, since only the backtest's end of
 * input releases them.
 *
 * @param rows       every row to send, in send order, flush rows last
 * @param partitions the partition of each row
 * @param users      the number of real users
 */
public record DrillInput(List<FileRecord> rows, int[] partitions, int users, int partitionCount) {
    public static final String FLUSH_USER_PREFIX = "flush-";
    static final Duration FLUSH_AHEAD = Duration.ofHours(1);

    /**
     * Reads {@code file} (Taobao format), keeps the valid rows of the first {@code users} distinct users in file
     * order (0 = all), sorts them by event time and appends the flush events.
     */
    public static DrillInput load(Path file, int users, int partitionCount) throws IOException {
        List<FileRecord> valid;
        try (Stream<FileRecord> lines = EventFileReader.lines(file, EventFileReader.Format.TAOBAO)) {
            valid = lines.filter(FileRecord::isValid).toList();
        }
        Set<String> kept = new LinkedHashSet<>();
        List<FileRecord> rows = new ArrayList<>();
        for (FileRecord r : valid) {
            String user = r.event().getUserId();
            if (kept.contains(user) || users <= 0 || kept.size() < users) {
                kept.add(user);
                rows.add(r);
            }
        }
        if (rows.isEmpty()) {
            throw new IllegalArgumentException("no valid rows in " + file);
        }
        rows.sort(Comparator.comparingLong((FileRecord r) -> r.event().getEventTime().toEpochMilli())
                .thenComparingLong(FileRecord::lineNumber));
        FileRecord last = rows.get(rows.size() - 1);
        long nextLine = rows.stream().mapToLong(FileRecord::lineNumber).max().orElse(0) + 1;
        int[] partitions = new int[rows.size() + partitionCount];
        for (int i = 0; i < rows.size(); i++) {
            partitions[i] = partitionOf(rows.get(i).event().getUserId(), partitionCount);
        }
        for (int p = 0; p < partitionCount; p++) {
            ClickEvent flush = ClickEvent.newBuilder(last.event())
                    .setUserId(FLUSH_USER_PREFIX + p)
                    .setEventTime(last.event().getEventTime().plus(FLUSH_AHEAD))
                    .build();
            partitions[rows.size()] = p;
            rows.add(new FileRecord(nextLine + p, "(flush event for partition " + p + ")", null, flush, null, null));
        }
        return new DrillInput(List.copyOf(rows), partitions, kept.size(), partitionCount);
    }

    /** A user always lands on the same partition, so that each partition is in event-time order. */
    static int partitionOf(String user, int partitionCount) {
        return Math.floorMod(user.hashCode(), partitionCount);
    }

    public static boolean isFlushUser(String user) {
        return user.startsWith(FLUSH_USER_PREFIX);
    }

    /** The real events, without the flush events. */
    public int events() {
        return rows.size() - partitionCount;
    }
}

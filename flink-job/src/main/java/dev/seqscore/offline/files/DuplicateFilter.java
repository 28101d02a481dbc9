package dev.seqscore.offline.files;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.DropKind;

/**
 * The cleaning contract's last rule over a whole file: a row with the same user, item, event type and event time as
 * an earlier kept row is dropped as {@link DropKind#DUPLICATE}; the first in file order stays. (The job's window
 * drops such duplicates too, but only within a window; a file is judged whole, as training judges it.)
 */
public final class DuplicateFilter {
    private DuplicateFilter() {}

    private record Key(String user, String item, String type, long time) {}

    /** The rows in the same order, later exact duplicates turned into rejections. */
    public static List<FileRecord> apply(List<FileRecord> rows) {
        Set<Key> seen = new HashSet<>();
        List<FileRecord> out = new ArrayList<>(rows.size());
        for (FileRecord r : rows) {
            if (r.isValid()) {
                ClickEvent e = r.event();
                if (!seen.add(new Key(e.getUserId(), e.getItemId(), e.getEventType(), e.getEventTime().toEpochMilli()))) {
                    out.add(FileRecord.rejected(r.lineNumber(), r.rawLine(), r.rawTimestamp(), DropKind.DUPLICATE,
                            "duplicate of an earlier row (same user, item, event type and event time)"));
                    continue;
                }
            }
            out.add(r);
        }
        return out;
    }
}

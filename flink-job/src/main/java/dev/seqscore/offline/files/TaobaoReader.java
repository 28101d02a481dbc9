package dev.seqscore.offline.files;

import java.util.List;
import java.util.Map;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.DropKind;
import dev.seqscore.events.Rejection;

/**
 * Taobao UserBehavior rows: no header; {@code user_id,item_id,category_id,behavior_type,timestamp_seconds};
 * {@code pv→view, cart, fav, buy}; time = seconds × 1000; rows outside the data's documented time range are dropped
 * ({@link DropKind#OUT_OF_TIME_RANGE}), as training drops them.
 */
final class TaobaoReader extends RowReader {
    /** [2017-11-25 00:00, 2017-12-04 00:00) China time, in epoch seconds: the range the dataset documents. */
    static final long FROM_SECONDS = 1_511_539_200L;
    static final long TO_SECONDS = 1_512_316_800L;

    private static final Map<String, String> TYPES = Map.of("pv", "view", "cart", "cart", "fav", "fav", "buy", "buy");

    @Override
    ClickEvent parse(String line) throws Rejection {
        List<String> c = CsvCells.cells(line, 5);
        rawTimestamp = c.get(4);
        requireIds(c.get(0), c.get(1));
        String type = TYPES.get(c.get(3));
        if (type == null) {
            throw unknownType(c.get(3));
        }
        long seconds = CsvCells.epoch(rawTimestamp);
        if (seconds > Long.MAX_VALUE / 1000) {
            throw new Rejection(DropKind.BAD_TIMESTAMP, "timestamp out of range '" + rawTimestamp + "'");
        }
        if (seconds < FROM_SECONDS || seconds >= TO_SECONDS) {
            throw new Rejection(DropKind.OUT_OF_TIME_RANGE, "timestamp " + seconds + " outside [" + FROM_SECONDS
                    + ", " + TO_SECONDS + ") s");
        }
        return event(c.get(0), type, c.get(1), c.get(2), seconds * 1000L, null, null);
    }
}

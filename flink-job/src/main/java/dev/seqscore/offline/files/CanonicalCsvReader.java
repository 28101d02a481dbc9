package dev.seqscore.offline.files;

import java.io.IOException;
import java.util.List;
import java.util.Map;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.DropKind;
import dev.seqscore.events.Rejection;

/**
 * Canonical CSV rows: a header naming at least {@code user_id,event_type,item_id,event_time} (epoch ms), optionally
 * {@code category_id,price,session_id}; an empty cell is null. The event type is passed through: whether it is in
 * the model's vocabulary is the job's check ({@link dev.seqscore.events.EventValidator}), since this reader does not know the model.
 */
final class CanonicalCsvReader extends RowReader {
    static final List<String> REQUIRED = List.of("user_id", "event_type", "item_id", "event_time");

    private final int width;
    private final int user;
    private final int type;
    private final int item;
    private final int time;
    private final Integer category;
    private final Integer price;
    private final Integer session;

    CanonicalCsvReader(String headerLine, String sourceName) throws IOException {
        Map<String, Integer> h = CsvCells.header(headerLine, REQUIRED, sourceName);
        width = h.get("");
        user = h.get("user_id");
        type = h.get("event_type");
        item = h.get("item_id");
        time = h.get("event_time");
        category = h.get("category_id");
        price = h.get("price");
        session = h.get("session_id");
    }

    @Override
    ClickEvent parse(String line) throws Rejection {
        List<String> c = CsvCells.cells(line, width);
        rawTimestamp = c.get(time);
        requireIds(c.get(user), c.get(item));
        String eventType = c.get(type);
        if (eventType.isEmpty()) {
            throw new Rejection(DropKind.UNKNOWN_EVENT_TYPE, "empty event_type");
        }
        long millis = CsvCells.epoch(rawTimestamp);
        Double p = price == null ? null : CsvCells.price(c.get(price));
        return event(c.get(user), eventType, c.get(item), category == null ? "" : c.get(category), millis, p,
                session == null ? null : CsvCells.emptyToNull(c.get(session)));
    }
}

package dev.seqscore.offline.files;

import java.io.IOException;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.time.format.ResolverStyle;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.DropKind;
import dev.seqscore.events.Rejection;

/**
 * REES46 (Open CDP) rows, columns found by header name: {@code event_time} "YYYY-MM-DD HH:MM:SS UTC",
 * {@code event_type} {@code view, cart, purchase→buy, remove_from_cart}, {@code product_id→item_id},
 * {@code category_id}, {@code price}, {@code user_id}, {@code user_session→session_id}.
 */
final class Rees46Reader extends RowReader {
    static final List<String> REQUIRED =
            List.of("event_time", "event_type", "product_id", "category_id", "price", "user_id", "user_session");

    private static final DateTimeFormatter TIME =
            DateTimeFormatter.ofPattern("uuuu-MM-dd HH:mm:ss 'UTC'", Locale.ROOT).withResolverStyle(ResolverStyle.STRICT);
    private static final Map<String, String> TYPES = Map.of(
            "view", "view", "cart", "cart", "purchase", "buy", "remove_from_cart", "remove_from_cart");

    private final int width;
    private final int time;
    private final int type;
    private final int product;
    private final int category;
    private final int price;
    private final int user;
    private final int session;

    Rees46Reader(String headerLine, String sourceName) throws IOException {
        Map<String, Integer> h = CsvCells.header(headerLine, REQUIRED, sourceName);
        width = h.get("");
        time = h.get("event_time");
        type = h.get("event_type");
        product = h.get("product_id");
        category = h.get("category_id");
        price = h.get("price");
        user = h.get("user_id");
        session = h.get("user_session");
    }

    @Override
    ClickEvent parse(String line) throws Rejection {
        List<String> c = CsvCells.cells(line, width);
        rawTimestamp = c.get(time);
        requireIds(c.get(user), c.get(product));
        String mapped = TYPES.get(c.get(type));
        if (mapped == null) {
            throw unknownType(c.get(type));
        }
        long millis;
        try {
            millis = LocalDateTime.parse(rawTimestamp, TIME).toInstant(ZoneOffset.UTC).toEpochMilli();
        } catch (DateTimeParseException e) {
            throw new Rejection(DropKind.BAD_TIMESTAMP,
                    "unparseable timestamp '" + rawTimestamp + "', expected YYYY-MM-DD HH:MM:SS UTC");
        }
        return event(c.get(user), mapped, c.get(product), c.get(category), millis, CsvCells.price(c.get(price)),
                CsvCells.emptyToNull(c.get(session)));
    }
}

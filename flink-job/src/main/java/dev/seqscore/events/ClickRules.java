package dev.seqscore.events;

/**
 * What a valid click is, in one place: the field rules every source shares (docs/feature-contract.md, "Cleaning").
 * The file readers reject rows by them, and {@link EventValidator} dead-letters Kafka records by them; model-export's
 * {@code check_click} implements the same rules.
 *
 * <p>A click needs a user id and an item id that are not blank (nothing left after trimming characters up to
 * U+0020), an event time after 1970 (epoch milliseconds &gt; 0), and a price
 * that is absent or a finite, non-negative number. Whether its event type is known depends on the source (a mapping
 * for Taobao and REES46, the model's vocabulary for canonical input and Kafka) and is checked there.
 */
public final class ClickRules {
    private ClickRules() {}

    /**
     * @throws Rejection naming the first rule the fields break, in the order user, item, time, price
     */
    public static void check(String userId, String itemId, Long eventTimeMs, Double price) throws Rejection {
        if (isBlank(userId)) {
            throw new Rejection(DropKind.EMPTY_USER, "empty user_id");
        }
        if (isBlank(itemId)) {
            throw new Rejection(DropKind.EMPTY_ITEM, "empty item_id");
        }
        if (eventTimeMs == null) {
            throw new Rejection(DropKind.BAD_TIMESTAMP, "event_time is missing");
        }
        if (eventTimeMs <= 0) {
            throw new Rejection(DropKind.BAD_TIMESTAMP, "event_time " + eventTimeMs + " is not after 1970");
        }
        if (price != null && !validPrice(price)) {
            throw new Rejection(DropKind.BAD_PRICE, "price " + price + " is not a non-negative number");
        }
    }

    public static boolean validPrice(double p) {
        return Double.isFinite(p) && p >= 0;
    }

    /** Null, or nothing left after trimming characters up to U+0020 (Java's {@code trim()}, Python's {@code trim}). */
    public static boolean isBlank(String s) {
        return s == null || s.trim().isEmpty();
    }
}

package dev.seqscore.events;

import java.util.Locale;

/**
 * Why a data-file row is dropped: the drop kinds of the cleaning contract (docs/feature-contract.md, "Cleaning"), which
 * model-export's readers count under the same names. {@link #key()} is the name both sides report.
 */
public enum DropKind {
    /** A CSV row with a cell count other than the format's (or the header's). */
    WRONG_COLUMN_COUNT,
    /** A CSV row with an unterminated quoted cell. */
    BAD_QUOTING,
    /** A JSONL line that is not JSON, or not a JSON object. */
    BAD_JSON,
    /** A JSON key of the wrong type (an id that is neither a string nor an integer). */
    BAD_FIELD,
    /** user_id missing, empty or blank. */
    EMPTY_USER,
    /** item_id missing, empty or blank. */
    EMPTY_ITEM,
    /** An event type that is empty, or outside the source's mapping (Taobao, REES46). */
    UNKNOWN_EVENT_TYPE,
    /** A missing, malformed, negative, zero or overflowing timestamp. */
    BAD_TIMESTAMP,
    /** A price that is not a number, negative, NaN or infinite. */
    BAD_PRICE,
    /** A Taobao row outside the data's documented time range. */
    OUT_OF_TIME_RANGE,
    /** The same user, item, event type and event time as an earlier row, which is kept. */
    DUPLICATE;

    /** The contract's name, e.g. {@code out_of_time_range}. */
    public String key() {
        return name().toLowerCase(Locale.ROOT);
    }
}

package dev.seqscore.features;

import java.util.Objects;

/**
 * One event of a window as a list: only what the features need. The reference form of a window, for backtests of the
 * contract ({@link WindowRule#windowEndingAt}), golden-vector parity and tests; the scorer keeps its windows in Flink
 * state as a {@link PackedWindow}, with the ids hashed.
 */
public class WindowEvent {
    public String itemId;
    public String categoryId;
    /** 1-based id in the model vocabulary; 0 is padding and never stored. */
    public int typeId;
    /** Epoch milliseconds UTC. */
    public long eventTime;

    public WindowEvent() {}

    public WindowEvent(String itemId, String categoryId, int typeId, long eventTime) {
        this.itemId = itemId;
        this.categoryId = categoryId;
        this.typeId = typeId;
        this.eventTime = eventTime;
    }

    /** Exact duplicates (same item, type and time for one user) are dropped, as in training. */
    public boolean sameAs(WindowEvent o) {
        return typeId == o.typeId && eventTime == o.eventTime && Objects.equals(itemId, o.itemId);
    }

    @Override
    public boolean equals(Object o) {
        if (this == o) return true;
        if (!(o instanceof WindowEvent)) return false;
        WindowEvent w = (WindowEvent) o;
        return sameAs(w) && Objects.equals(categoryId, w.categoryId);
    }

    @Override
    public int hashCode() {
        return Objects.hash(itemId, categoryId, typeId, eventTime);
    }

    @Override
    public String toString() {
        return "WindowEvent{" + itemId + "/" + categoryId + ", type=" + typeId + ", t=" + eventTime + "}";
    }
}

package dev.seqscore.features;

import java.util.Objects;

/**
 * One event as the per-user window keeps it: only what the features need, so that state stays small.
 *
 * <p>A Flink POJO (public fields, no-arg constructor) so that window state uses the POJO serializer rather than Kryo.
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

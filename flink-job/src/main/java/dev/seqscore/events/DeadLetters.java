package dev.seqscore.events;

import dev.seqscore.avro.DeadLetter;
import java.nio.ByteBuffer;
import java.time.Instant;

/** Builds {@link DeadLetter} records that keep the evidence: reason, origin and the bytes as read. */
public final class DeadLetters {
    private DeadLetters() {}

    public static DeadLetter of(DeadLetterReason reason, String detail, InputRecord r, long nowMillis) {
        byte[] raw = r.raw;
        if (raw == null && r.isDecoded() && r.eventTime != null && r.userId != null) {
            // Valid records drop their bytes before entering state; a late one is re-encoded so the DLQ still
            // carries a replayable ClickEvent.
            raw = ClickEventAvro.encode(r.toClickEvent());
        }
        return DeadLetter.newBuilder()
                .setReason(reason.name())
                .setDetail(detail == null ? "" : detail)
                .setSourceTopic(r.sourceTopic)
                .setSourcePartition(r.sourcePartition)
                .setSourceOffset(r.sourceOffset)
                .setRaw(raw == null ? null : ByteBuffer.wrap(raw))
                .setRecordedAt(Instant.ofEpochMilli(nowMillis))
                .build();
    }
}

package dev.seqscore.events;

/** The length of a string in UTF-8, counted without encoding it. */
final class Utf8Length {
    private Utf8Length() {}

    /**
     * The number of bytes {@code s.getBytes(StandardCharsets.UTF_8)} would have: 1 per char below U+0080, 2 below
     * U+0800, 4 per surrogate pair, 3 for any other char; an unpaired surrogate counts 1, since the encoder writes
     * {@code ?} for it (as Avro and Kafka's string serializers do when the id goes downstream).
     */
    static long of(CharSequence s) {
        long bytes = 0;
        int n = s.length();
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                bytes += 1;
            } else if (c < 0x800) {
                bytes += 2;
            } else if (!Character.isSurrogate(c)) {
                bytes += 3;
            } else if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(s.charAt(i + 1))) {
                bytes += 4;
                i++;
            } else {
                bytes += 1;
            }
        }
        return bytes;
    }
}

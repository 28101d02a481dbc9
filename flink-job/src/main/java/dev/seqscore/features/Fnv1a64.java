package dev.seqscore.features;

/**
 * 64-bit FNV-1a over the UTF-8 bytes of a string, and the hash bucket the model's embeddings use
 * (docs/feature-contract.md, "Hash").
 */
public final class Fnv1a64 {
    public static final long OFFSET_BASIS = 0xcbf29ce484222325L;
    public static final long PRIME = 0x100000001b3L;

    private Fnv1a64() {}

    /** The hash, as a long whose bits are the unsigned 64-bit value. */
    public static long hash(String s) {
        long h = OFFSET_BASIS;
        int n = s.length();
        // Encodes UTF-8 inline rather than via getBytes: this runs for every window event, and must not allocate.
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                h = step(h, c);
            } else if (c < 0x800) {
                h = step(h, 0xc0 | (c >>> 6));
                h = step(h, 0x80 | (c & 0x3f));
            } else if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(s.charAt(i + 1))) {
                int cp = Character.toCodePoint(c, s.charAt(++i));
                h = step(h, 0xf0 | (cp >>> 18));
                h = step(h, 0x80 | ((cp >>> 12) & 0x3f));
                h = step(h, 0x80 | ((cp >>> 6) & 0x3f));
                h = step(h, 0x80 | (cp & 0x3f));
            } else if (Character.isSurrogate(c)) {
                // A lone surrogate has no UTF-8 form; String.getBytes(UTF_8) writes '?', so do the same.
                h = step(h, '?');
            } else {
                h = step(h, 0xe0 | (c >>> 12));
                h = step(h, 0x80 | ((c >>> 6) & 0x3f));
                h = step(h, 0x80 | (c & 0x3f));
            }
        }
        return h;
    }

    /** {@code (fnv1a64(id) mod buckets) + 1}, with the hash read as unsigned; 0 is left for padding. */
    public static int bucket(String id, int buckets) {
        return bucket(hash(id), buckets);
    }

    /** The bucket of an id whose {@link #hash} is {@code hash}. */
    public static int bucket(long hash, int buckets) {
        if (buckets <= 0) {
            throw new IllegalArgumentException("buckets must be positive, got " + buckets);
        }
        return (int) Long.remainderUnsigned(hash, buckets) + 1;
    }

    private static long step(long h, int b) {
        return (h ^ (b & 0xff)) * PRIME;
    }
}

package dev.seqscore.features;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The lifetime record and its features against the contract read loop by loop: for every event, the features are
 * recomputed from the list of the user's earlier events since the last reset, as the contract's table words them.
 */
class LifetimeTest {
    private static final ModelSpec SPEC = SpecFixtures.smallSpecV3();
    private static final long R = SPEC.streaming().orElseThrow().resetGapMs();
    private static final long DAY = 86_400_000L;
    private static final long HOUR = 3_600_000L;
    private static final int VIEW = 1, CART = 2, BUY = 4, REMOVE = 5;
    /** 2017-11-25 00:00 UTC. */
    private static final long T0 = Instant.parse("2017-11-25T00:00:00Z").toEpochMilli();

    private record Ev(long t, int type) {}

    /** The contract's raw lifetime features of {@code e} after {@code before} (the record's events), in spec order. */
    private static double[] reference(List<Ev> before, Ev e, long utcOffsetMs) {
        List<String> names = SPEC.streaming().orElseThrow().lifetimeFeatureNames();
        double[] raw = new double[names.size()];
        for (int f = 0; f < raw.length; f++) {
            String name = names.get(f);
            if (name.startsWith("life_count_")) {
                int type = SPEC.typeId(name.substring("life_count_".length()));
                long count = before.stream().filter(x -> x.type() == type).count() + (e.type() == type ? 1 : 0);
                raw[f] = Math.log1p(count);
            } else if (name.equals("life_active_days")) {
                Set<Long> days = new HashSet<>();
                for (Ev x : before) days.add(Math.floorDiv(x.t() + utcOffsetMs, DAY));
                days.add(Math.floorDiv(e.t() + utcOffsetMs, DAY));
                raw[f] = Math.log1p(days.size());
            } else if (name.equals("life_days_since_first")) {
                raw[f] = before.isEmpty() ? 0 : Math.log1p((e.t() - before.get(0).t()) / 86_400_000.0);
            } else if (name.equals("life_since_prev_event")) {
                long since = before.isEmpty() ? R : Math.min(e.t() - before.get(before.size() - 1).t(), R);
                raw[f] = Math.log1p(since / 1000.0);
            } else {
                Ev buy = null;
                for (Ev x : before) if (x.type() == BUY) buy = x;
                if (name.equals("life_has_prev_buy")) {
                    raw[f] = buy == null ? 0 : 1;
                } else {
                    raw[f] = Math.log1p((buy == null ? R : Math.min(e.t() - buy.t(), R)) / 1000.0);
                }
            }
        }
        return raw;
    }

    private static float[] standardised(double[] raw) {
        List<ModelSpec.FeatureSpec> fs = SPEC.streaming().orElseThrow().lifetimeFeatures();
        float[] out = new float[raw.length];
        for (int f = 0; f < raw.length; f++) {
            out[f] = (float) ((raw[f] - fs.get(f).mean()) / fs.get(f).std());
        }
        return out;
    }

    /** A user over months: bursts within days, quiet weeks, gaps beyond the reset gap, buys now and then. */
    private static List<Ev> history(Random r, int events) {
        List<Ev> out = new ArrayList<>();
        long t = T0 + r.nextInt(1_000_000);
        for (int i = 0; i < events; i++) {
            int kind = r.nextInt(20);
            t += kind == 0 ? R + r.nextInt(3) * DAY // a reset
                    : kind == 1 ? R - r.nextInt(2) // just inside the gap, or exactly on it
                    : kind < 5 ? r.nextInt(10) * DAY + r.nextInt(24) * HOUR
                    : kind < 8 ? 0 : r.nextInt(600_000); // the same millisecond now and then
            int type = r.nextInt(10) == 0 ? BUY : 1 + r.nextInt(5);
            out.add(new Ev(t, type));
        }
        return out;
    }

    @Test
    void featuresFollowTheContractEventByEvent() {
        FeatureEncoder encoder = new FeatureEncoder(SPEC);
        FeatureBatch batch = FeatureBatch.forServed(SPEC, SPEC.served(Scoring.INCREMENTAL), 3);
        Random r = new Random(13);
        int resets = 0, events = 0;
        for (int user = 0; user < 40; user++) {
            Lifetime record = Lifetime.forSpec(SPEC);
            List<Ev> since = new ArrayList<>(); // the events since the last reset: what the record stands for
            for (Ev e : history(r, 1 + r.nextInt(80))) {
                boolean gap = !since.isEmpty() && e.t() - since.get(since.size() - 1).t() > R;
                assertThat(record.resetIfGap(e.t(), R)).isEqualTo(gap);
                if (gap) {
                    since.clear();
                    resets++;
                }
                int row = events % 3;
                encoder.addLifetime(record, e.t(), e.type(), batch, row);
                assertThat(batch.lifetimeRow(row)).as("user %d event %d", user, since.size())
                        .containsExactly(standardised(reference(since, e, SPEC.utcOffsetMs())));
                record.apply(e.t(), e.type());
                since.add(e);
                events++;
            }
        }
        assertThat(resets).as("histories exercise the reset rule").isGreaterThan(10);
        assertThat(events).isGreaterThan(1000);
    }

    @Test
    void anEmptyRecordGivesANewUsersFeatures() {
        Lifetime record = Lifetime.forSpec(SPEC);
        assertThat(record.isEmpty()).isTrue();
        assertThat(record.resetIfGap(T0, R)).as("nothing to reset").isFalse();
        FeatureEncoder encoder = new FeatureEncoder(SPEC);
        FeatureBatch batch = FeatureBatch.forServed(SPEC, SPEC.served(Scoring.INCREMENTAL), 1);
        encoder.addLifetime(record, T0, CART, batch, 0);
        double rGap = Math.log1p(R / 1000.0);
        // count_view .. count_remove_from_cart, active days, days since first, since prev event, since prev buy, has buy
        double[] raw = {0, Math.log1p(1), 0, 0, 0, Math.log1p(1), 0, rGap, rGap, 0};
        assertThat(batch.lifetimeRow(0)).containsExactly(standardised(raw));
    }

    @Test
    void theResetRuleEmptiesTheRecordOnlyAfterMoreThanTheGap() {
        Lifetime record = Lifetime.forSpec(SPEC);
        record.apply(T0, BUY);
        assertThat(record.resetIfGap(T0 + R, R)).as("exactly the gap").isFalse();
        record.apply(T0 + R, VIEW);
        assertThat(record.resetIfGap(T0 + 2 * R + 1, R)).as("one millisecond more").isTrue();
        assertThat(record.isEmpty()).isTrue();
        assertThat(record.hasBuy()).isFalse();
        assertThat(record.count(VIEW)).isZero();
        assertThat(record.activeDays()).isZero();
    }

    @Test
    void daysAreLocalDaysOfTheSpecsOffset() {
        // +08:00: local midnight is 16:00 UTC.
        long midnight = Instant.parse("2017-11-25T16:00:00Z").toEpochMilli();
        Lifetime record = Lifetime.forSpec(SPEC);
        record.apply(midnight - 8 * HOUR, VIEW); // 08:00 local, 25 Nov
        record.apply(midnight - 1, VIEW); // 23:59:59.999 local, 25 Nov
        assertThat(record.activeDays()).isEqualTo(1);
        assertThat(record.activeDaysWith(midnight)).isEqualTo(2);
        record.apply(midnight, VIEW); // 00:00 local, 26 Nov
        assertThat(record.activeDays()).isEqualTo(2);
        assertThat(record.lastDay()).isEqualTo(Math.floorDiv(midnight + 8 * HOUR, DAY));
        record.apply(midnight + DAY - 1, CART);
        assertThat(record.activeDays()).isEqualTo(2);
        record.apply(midnight + 3 * DAY, CART); // days with no event count once, not at all
        assertThat(record.activeDays()).isEqualTo(3);

        // Behind UTC, and before 1970 in local time, floorDiv still gives whole local days.
        Lifetime west = new Lifetime(5, 4, -5 * HOUR);
        west.apply(1, VIEW); // 19:00 local, 31 Dec 1969
        west.apply(5 * HOUR - 1, VIEW); // 23:59:59.999 local
        assertThat(west.activeDays()).isEqualTo(1);
        assertThat(west.lastDay()).isEqualTo(-1);
        west.apply(5 * HOUR, VIEW);
        assertThat(west.activeDays()).isEqualTo(2);
        assertThat(west.lastDay()).isZero();
    }

    @Test
    void roundTripsThroughItsFixedSizeBytes() {
        assertThat(Lifetime.bytes(5)).isEqualTo(48);
        Lifetime record = Lifetime.forSpec(SPEC);
        assertThat(record.bytes()).isEqualTo(Lifetime.bytes(5));
        for (Ev e : history(new Random(5), 60)) {
            record.resetIfGap(e.t(), R);
            record.apply(e.t(), e.type());
        }
        record.apply(record.last() + 1, BUY);
        byte[] stored = new byte[3 + record.bytes() + 2];
        Arrays.fill(stored, (byte) 0x5a);
        record.writeTo(stored, 3);
        assertThat(stored[0]).as("writes only its own bytes").isEqualTo((byte) 0x5a);
        assertThat(stored[stored.length - 1]).isEqualTo((byte) 0x5a);
        Lifetime copy = Lifetime.forSpec(SPEC);
        copy.readFrom(stored, 3);
        assertThat(copy).hasToString(record.toString());
        for (int type = 1; type <= 5; type++) {
            assertThat(copy.count(type)).isEqualTo(record.count(type));
        }
        assertThat(copy.first()).isEqualTo(record.first());
        assertThat(copy.last()).isEqualTo(record.last());
        assertThat(copy.lastBuy()).isEqualTo(record.last());
        assertThat(copy.activeDays()).isEqualTo(record.activeDays());

        // Little-endian, in the documented order: the view count first.
        assertThat(stored[3] & 0xff).isEqualTo(record.count(VIEW) & 0xff);
        // All zeros is the empty record, as a state backend's fresh array would be.
        copy.readFrom(new byte[48], 0);
        assertThat(copy.isEmpty()).isTrue();
        assertThat(copy.hasBuy()).isFalse();
        assertThat(copy).hasToString("Lifetime{empty}");
        record.clear();
        byte[] cleared = new byte[48];
        Arrays.fill(cleared, (byte) 1);
        record.writeTo(cleared, 0);
        assertThat(cleared).containsOnly(0);
        assertThatThrownBy(() -> record.readFrom(new byte[50], 3)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("needs 48 bytes from offset 3");
    }

    @Test
    void countsSaturateInsteadOfOverflowing() {
        Lifetime record = Lifetime.forSpec(SPEC);
        record.apply(T0, VIEW);
        byte[] b = new byte[48];
        record.writeTo(b, 0);
        java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(0, Integer.MAX_VALUE);
        record.readFrom(b, 0);
        FeatureEncoder encoder = new FeatureEncoder(SPEC);
        FeatureBatch batch = FeatureBatch.forServed(SPEC, SPEC.served(Scoring.INCREMENTAL), 1);
        encoder.addLifetime(record, T0 + 1, VIEW, batch, 0);
        assertThat(batch.lifetime[0]).isEqualTo((float) ((Math.log1p(Integer.MAX_VALUE + 1.0) - 1.5) / 2.0));
        record.apply(T0 + 1, VIEW);
        assertThat(record.count(VIEW)).isEqualTo(Integer.MAX_VALUE);
    }

    @Test
    void refusesEventsOutOfOrderOrOutsideTheVocabulary() {
        Lifetime record = Lifetime.forSpec(SPEC);
        record.apply(T0, VIEW);
        record.apply(T0, CART); // the same time is in order
        assertThatThrownBy(() -> record.apply(T0 - 1, VIEW)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("earlier than the record's last");
        assertThatThrownBy(() -> record.apply(T0 + 1, 0)).hasMessageContaining("outside the vocabulary 1..5");
        assertThatThrownBy(() -> record.apply(T0 + 1, 6)).hasMessageContaining("outside the vocabulary 1..5");
        assertThatThrownBy(() -> Lifetime.forSpec(SPEC).apply(0, VIEW)).hasMessageContaining("not after 1970");
        assertThat(record.count(VIEW)).isEqualTo(1);
    }

    @Test
    void aMissingRecordIsRebuiltFromTheWindow() {
        PackedWindow window = PackedWindow.forSpec(SPEC, SPEC.maxEvents(), SPEC.horizonMs());
        Lifetime expected = Lifetime.forSpec(SPEC);
        long t = Instant.parse("2017-11-25T15:30:00Z").toEpochMilli();
        int[] types = {VIEW, CART, BUY, VIEW, REMOVE};
        for (int i = 0; i < types.length; i++) {
            t += 10 * 60_000L;
            window.append("i" + i, "c", types[i], t);
            expected.apply(t, types[i]);
        }
        Lifetime rebuilt = Lifetime.forSpec(SPEC);
        rebuilt.apply(T0 - DAY, CART); // whatever it held is replaced
        rebuilt.rebuildFrom(window);
        assertThat(rebuilt).hasToString(expected.toString());
        assertThat(rebuilt.activeDays()).as("the window crosses local midnight").isEqualTo(2);
        rebuilt.rebuildFrom(window, window.size() - 1);
        assertThat(rebuilt.count(REMOVE)).isZero();
        assertThat(rebuilt.last()).isEqualTo(window.eventTime(window.size() - 2));
        rebuilt.rebuildFrom(window, 0);
        assertThat(rebuilt.isEmpty()).isTrue();
        assertThatThrownBy(() -> rebuilt.rebuildFrom(window, 6)).isInstanceOf(IndexOutOfBoundsException.class);
    }
}

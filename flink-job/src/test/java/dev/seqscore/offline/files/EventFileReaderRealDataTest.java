package dev.seqscore.offline.files;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.testing.RepoPaths;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;

import dev.seqscore.offline.files.EventFileReader.Format;

/**
 * The readers against the real public datasets (not in the repository; skipped where absent): every row is read;
 * none is malformed, and only the sample's few rows outside the data's documented time range are dropped.
 */
class EventFileReaderRealDataTest {

    private record Summary(long rows, long valid, Map<String, Long> byType, Map<String, Long> rejections,
                           Instant min, Instant max, long users) {}

    private static Summary summarise(Path file, Format format) throws IOException {
        long[] rows = {0, 0};
        Map<String, Long> byType = new TreeMap<>();
        Map<String, Long> rejections = new TreeMap<>();
        Instant[] range = {Instant.MAX, Instant.MIN};
        Set<String> users = new HashSet<>();
        try (Stream<FileRecord> s = EventFileReader.lines(file, format)) {
            s.forEach(r -> {
                rows[0]++;
                if (r.isValid()) {
                    rows[1]++;
                    byType.merge(r.event().getEventType(), 1L, Long::sum);
                    Instant t = r.event().getEventTime();
                    range[0] = t.isBefore(range[0]) ? t : range[0];
                    range[1] = t.isAfter(range[1]) ? t : range[1];
                    users.add(r.event().getUserId());
                } else {
                    rejections.merge(r.rejectionKind() + ": " + r.rejection(), 1L, Long::sum);
                }
            });
        }
        return new Summary(rows[0], rows[1], byType, rejections, range[0], range[1], users.size());
    }

    @Test
    void taobaoSample() throws IOException {
        Summary s = summarise(RepoPaths.requireData("taobao/UserBehavior_sample.csv"), Format.TAOBAO);

        assertThat(s.rows()).isEqualTo(60_973);
        // The README warns of a few rows outside the data's 9 days: the cleaning contract drops them, as training does.
        assertThat(s.rejections().keySet()).allMatch(k -> k.startsWith("out_of_time_range: timestamp "));
        assertThat(s.rejections().values().stream().mapToLong(Long::longValue).sum()).isEqualTo(23);
        assertThat(s.valid()).isEqualTo(60_950);
        assertThat(s.users()).isEqualTo(600);
        assertThat(s.byType()).containsOnlyKeys("view", "cart", "fav", "buy");
        assertThat(s.min()).isAfterOrEqualTo(Instant.parse("2017-11-24T16:00:00Z"));
        assertThat(s.max()).isBefore(Instant.parse("2017-12-03T16:00:00Z"));
    }

    @Test
    void taobaoTimeOrdered() throws IOException {
        Path file = RepoPaths.requireData("taobao/UserBehavior_timeordered_110k.csv");
        Summary s = summarise(file, Format.TAOBAO);

        assertThat(s.rows()).isEqualTo(110_278);
        assertThat(s.rejections()).isEmpty();
        try (Stream<FileRecord> records = EventFileReader.lines(file, Format.TAOBAO)) {
            long[] previous = {Long.MIN_VALUE};
            long outOfOrder = records.filter(r -> {
                long t = r.event().getEventTime().toEpochMilli();
                boolean back = t < previous[0];
                previous[0] = Math.max(previous[0], t);
                return back;
            }).count();
            assertThat(outOfOrder).as("rows earlier than an earlier row").isZero();
        }
    }

    @Test
    void rees46Head() throws IOException {
        Path file = RepoPaths.requireData("rees46/2019-Oct_head.csv");
        Summary s = summarise(file, Format.REES46);

        assertThat(s.rows()).isEqualTo(17_433);
        assertThat(s.rejections()).isEmpty();
        assertThat(s.byType()).isEqualTo(Map.of("view", 17_054L, "cart", 165L, "buy", 214L));
        assertThat(s.min()).isEqualTo(Instant.parse("2019-10-01T00:00:00Z"));
        try (Stream<FileRecord> records = EventFileReader.lines(file, Format.REES46)) {
            Map<Boolean, Long> withSession = records.collect(Collectors.partitioningBy(
                    r -> r.event().getSessionId() != null, Collectors.counting()));
            assertThat(withSession.get(true)).isEqualTo(17_433);
        }
    }
}

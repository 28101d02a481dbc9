package dev.seqscore.e2e.drill;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.offline.files.FileRecord;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DrillInputTest {

    @Test
    void firstUsersInTimeOrderEachOnOnePartitionThenAFlushEventPerPartition(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("taobao.csv");
        // Grouped by user like the real file, not by time, inside the Taobao time range; one bad line.
        Files.writeString(file, String.join("\n",
                "1,100,10,pv,1511600000",
                "1,101,10,buy,1511545000",
                "2,200,20,cart,1511550000",
                "2,201,20,pv,1511550000",
                "2,202,20,teleport,1511550000",
                "3,300,30,pv,1511541000",
                ""));
        DrillInput in = DrillInput.load(file, 2, 2);

        assertThat(in.users()).isEqualTo(2);
        assertThat(in.events()).isEqualTo(4);
        List<FileRecord> real = in.rows().subList(0, in.events());
        assertThat(real).extracting(r -> r.event().getItemId()).containsExactly("101", "200", "201", "100");
        Map<String, Integer> partitionOfUser = new HashMap<>();
        for (int i = 0; i < in.rows().size(); i++) {
            String user = in.rows().get(i).event().getUserId();
            Integer before = partitionOfUser.putIfAbsent(user, in.partitions()[i]);
            assertThat(before == null || before == in.partitions()[i]).as("user %s on one partition", user).isTrue();
        }
        List<FileRecord> flush = in.rows().subList(in.events(), in.rows().size());
        assertThat(flush).extracting(r -> r.event().getUserId()).containsExactly("flush-0", "flush-1");
        assertThat(in.partitions()[in.events()]).isZero();
        assertThat(in.partitions()[in.events() + 1]).isEqualTo(1);
        assertThat(flush).allSatisfy(r -> assertThat(r.event().getEventTime())
                .isEqualTo(real.get(real.size() - 1).event().getEventTime().plus(DrillInput.FLUSH_AHEAD)));
        assertThat(DrillInput.isFlushUser("flush-1")).isTrue();
        assertThat(DrillInput.load(file, 0, 2).users()).as("0 = every user").isEqualTo(3);
    }
}

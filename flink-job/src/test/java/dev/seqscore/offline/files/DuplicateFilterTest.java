package dev.seqscore.offline.files;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.offline.files.EventFileReader.Format;
import java.io.IOException;
import java.io.StringReader;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

class DuplicateFilterTest {

    private static List<FileRecord> read(String csv) throws IOException {
        try (Stream<FileRecord> s = EventFileReader.of(new StringReader(csv), Format.TAOBAO, "t.csv").stream()) {
            return DuplicateFilter.apply(s.toList());
        }
    }

    @Test
    void laterExactDuplicatesAreDroppedAndTheFirstKept() throws IOException {
        List<FileRecord> r = read("""
                1,100,10,pv,1511544070
                1,100,99,pv,1511544070
                1,100,10,cart,1511544070
                1,100,10,pv,1511544071
                2,100,10,pv,1511544070
                1,100,10,pv,1511544070
                """);

        // A different category is still the same click; a different type, time or user is not.
        assertThat(r).extracting(FileRecord::rejectionKind)
                .containsExactly(null, "duplicate", null, null, null, "duplicate");
        assertThat(r.get(1).rejection()).contains("duplicate of an earlier row");
        assertThat(r.get(1).rawLine()).isEqualTo("1,100,99,pv,1511544070");
        assertThat(r.get(0).event().getCategoryId()).isEqualTo("10");
    }

    @Test
    void rejectedRowsStayAsTheyAreAndDoNotCountAsOriginals() throws IOException {
        List<FileRecord> r = read("""
                1,100,10,pv,1511000000
                1,100,10,pv
                1,100,10,pv,1511544070
                """);

        assertThat(r).extracting(FileRecord::rejectionKind)
                .containsExactly("out_of_time_range", "wrong_column_count", null);
    }
}

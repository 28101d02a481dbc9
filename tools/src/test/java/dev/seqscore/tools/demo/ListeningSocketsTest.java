package dev.seqscore.tools.demo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.List;
import org.junit.jupiter.api.Test;

class ListeningSocketsTest {

    @Test
    void readsListeningRowsOfBothTablesInTheKernelsByteOrder() {
        List<ListeningSockets.Listener> v4 = ListeningSockets.parse(List.of(
                "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
                "   0: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 101 1 0",
                "   1: 0100007F:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 102 1 0",
                "   2: 0100007F:A829 0100007F:DAC2 01 00000000:00000000 03:000008E8 00000000     0        0 103 3 0",
                "   3: 0202000A:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 104 1 0"));
        List<ListeningSockets.Listener> v6 = ListeningSockets.parse(List.of(
                "  sl  local_address                         remote_address                        st tx_queue",
                "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A "
                        + "00000000:00000000 00:00000000 00000000     0        0 201 1 0",
                "   1: 0000000000000000FFFF00000100007F:2385 00000000000000000000000000000000:0000 0A "
                        + "00000000:00000000 00:00000000 00000000     0        0 202 1 0",
                "   2: 00000000000000000000000001000000:2386 00000000000000000000000000000000:0000 0A "
                        + "00000000:00000000 00:00000000 00000000     0        0 203 1 0"));

        // The established connection (state 01) is not a listener.
        assertThat(v4).extracting(Object::toString).containsExactly("*:8081", "127.0.0.1:9092", "10.0.2.2:80");
        assertThat(v4).extracting(ListeningSockets.Listener::inode).containsExactly(101L, 102L, 104L);
        assertThat(v6).extracting(Object::toString).containsExactly("*:8080", "127.0.0.1:9093", "[0:0:0:0:0:0:0:1]:9094");
        assertThat(ListeningSockets.beyondLoopback(v4)).extracting(ListeningSockets.Listener::port)
                .containsExactly(8081, 80);
        assertThat(ListeningSockets.beyondLoopback(v6)).extracting(ListeningSockets.Listener::port)
                .containsExactly(8080);
    }

    @Test
    void findsThisProcesssOwnLoopbackListener() throws Exception {
        assumeTrue(ListeningSockets.supported(), "needs Linux /proc");
        int port;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = socket.getLocalPort();
            List<ListeningSockets.Listener> mine = ListeningSockets.ofThisProcess();

            assertThat(mine).filteredOn(l -> l.port() == port).singleElement()
                    .satisfies(l -> assertThat(l.loopbackOnly()).isTrue());
        }
        // Closed: no longer ours, even if another process takes the port meanwhile.
        assertThat(ListeningSockets.ofThisProcess()).noneMatch(l -> l.port() == port);
    }
}

package dev.seqscore.tools.demo;

import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The TCP ports this JVM listens on, read from Linux's {@code /proc}: the sockets in {@code /proc/self/net/tcp} and
 * {@code tcp6} in LISTEN state whose inodes are among this process's file descriptors. The demo prints them at start
 * and its test checks that none is reachable from beyond loopback.
 */
public final class ListeningSockets {
    private static final Path PROC = Path.of("/proc/self");
    private static final String LISTEN = "0A";
    private static final Pattern SOCKET_FD = Pattern.compile("socket:\\[(\\d+)]");

    /** One listening socket: the address it is bound to (wildcard, loopback or an interface's) and its port. */
    public record Listener(InetAddress address, int port, long inode) {
        /** Reachable only from this machine. */
        public boolean loopbackOnly() {
            return address.isLoopbackAddress();
        }

        @Override
        public String toString() {
            String host = address.isAnyLocalAddress() ? "*" : address.getHostAddress();
            return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
        }
    }

    private ListeningSockets() {}

    /** Whether this system has the {@code /proc} files to read (Linux). */
    public static boolean supported() {
        return Files.isReadable(PROC.resolve("net/tcp")) && Files.isDirectory(PROC.resolve("fd"));
    }

    /** Every TCP socket this process listens on, by port. */
    public static List<Listener> ofThisProcess() throws IOException {
        Set<Long> inodes = socketInodes(PROC.resolve("fd"));
        List<Listener> out = new ArrayList<>();
        for (String table : List.of("net/tcp", "net/tcp6")) {
            Path file = PROC.resolve(table);
            if (Files.isReadable(file)) {
                parse(Files.readAllLines(file)).stream().filter(l -> inodes.contains(l.inode())).forEach(out::add);
            }
        }
        out.sort(Comparator.comparingInt(Listener::port));
        return out;
    }

    /** The listeners of {@code all} that other machines could connect to. */
    public static List<Listener> beyondLoopback(List<Listener> all) {
        return all.stream().filter(l -> !l.loopbackOnly()).toList();
    }

    /**
     * The LISTEN rows of a {@code /proc/net/tcp} or {@code tcp6} table. Addresses are hex in the kernel's byte order:
     * each 32-bit word of the address is little-endian on the machines this runs on (x86, arm64).
     */
    static List<Listener> parse(List<String> lines) {
        List<Listener> out = new ArrayList<>();
        for (String line : lines) {
            String[] f = line.trim().split("\\s+");
            if (f.length < 10 || !f[0].endsWith(":") || !f[3].equals(LISTEN)) {
                continue; // the header, or a socket that is not listening
            }
            String[] local = f[1].split(":");
            out.add(new Listener(address(local[0]), Integer.parseInt(local[1], 16), Long.parseLong(f[9])));
        }
        return out;
    }

    private static InetAddress address(String hex) {
        byte[] bytes = new byte[hex.length() / 2];
        for (int word = 0; word < bytes.length / 4; word++) {
            for (int b = 0; b < 4; b++) {
                int at = (word * 4 + b) * 2;
                bytes[word * 4 + 3 - b] = (byte) Integer.parseInt(hex.substring(at, at + 2), 16);
            }
        }
        try {
            // An IPv4-mapped IPv6 address (::ffff:127.0.0.1) comes back as the IPv4 address, loopback included.
            return InetAddress.getByAddress(bytes);
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("not an address: " + hex, e);
        }
    }

    private static Set<Long> socketInodes(Path fdDir) throws IOException {
        Set<Long> inodes = new HashSet<>();
        try (Stream<Path> fds = Files.list(fdDir)) {
            for (Path fd : (Iterable<Path>) fds::iterator) {
                try {
                    Matcher m = SOCKET_FD.matcher(Files.readSymbolicLink(fd).toString());
                    if (m.matches()) {
                        inodes.add(Long.parseLong(m.group(1)));
                    }
                } catch (IOException e) {
                    // The descriptor was closed while we listed them: it listens on nothing now.
                }
            }
        }
        return inodes;
    }
}

package dev.seqscore.tools.bench;

import dev.seqscore.features.Fnv1a64;
import dev.seqscore.features.PackedWindow;
import dev.seqscore.features.WindowRule;
import dev.seqscore.offline.LocalFlink;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.locks.LockSupport;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

/**
 * Three ways to keep a user's window in Flink state, measured side by side on the heap and RocksDB backends: the
 * job's {@link PackedWindow} in one {@code ValueState<byte[]>}, a {@code ListState} of one packed event per element,
 * and a {@code MapState} of ring slots plus a head/count entry. Each keyed function does per event what the scorer
 * does with its window (read it, apply the window rule, write it back, read the window out as the encoder's columns),
 * without the model, so that the figures are the layouts' own cost. Measured: events/s once every window is full,
 * and savepoint bytes per user with full windows.
 */
final class StateLayoutBench {
    enum Layout { VALUE_RING, LIST, MAP }

    /**
     * Result of one run: steady-state events/s, and savepoint bytes per user in Flink's canonical format (the live
     * state, the same for every backend) and in the backend's native format (for RocksDB its SST files: compressed,
     * but with the older versions of each value that compaction has not dropped yet).
     */
    record Result(Layout layout, String backend, int users, double eventsPerSecond, double canonicalBytesPerUser,
                  double nativeBytesPerUser) {}

    static final int N = 50;
    static final long HORIZON_MS = Duration.ofHours(24).toMillis();
    static final int TYPES = 5;
    private static final long START = 1_511_658_000_000L;
    /** Rounds beyond the N that fill every window: the timed, steady part. */
    private static final int TIMED_ROUNDS = 6;

    private final Path work;

    StateLayoutBench(Path work) {
        this.work = work;
    }

    /** Runs {@code layout} on {@code backend} over {@code users} users, N + a few events each. */
    Result run(Layout layout, String backend, int users) throws Exception {
        long filled = (long) users * N;
        long events = filled + (long) users * TIMED_ROUNDS;
        String id = UUID.randomUUID().toString();
        Path dir = Files.createDirectories(work.resolve("layout-" + id));
        Configuration conf = new Configuration();
        conf.set(StateBackendOptions.STATE_BACKEND, backend);
        conf.setString("execution.checkpointing.incremental", "false");
        // On files: JobManager memory refuses any snapshot over 5 MB, and full windows of 100k users are 100 MB.
        conf.setString("execution.checkpointing.dir", dir.resolve("checkpoints").toUri().toString());
        try (LocalFlink flink = LocalFlink.start(1)) {
            StreamExecutionEnvironment env = flink.environment(1);
            env.configure(conf);
            // Timed from the moment every window is full.
            PipelineBench.Stopwatch watch = new PipelineBench.Stopwatch(events, filled);
            PipelineBench.WATCHES.put(id, watch);
            // Unbounded: the job must still run when the savepoint is taken.
            env.fromSource(new DataGeneratorSource<>(new Clicks(users, events), Long.MAX_VALUE,
                            TypeInformation.of(Click.class)), WatermarkStrategy.noWatermarks(), "clicks")
                    .filter(c -> c.user != null)
                    .keyBy(c -> c.user, Types.STRING)
                    .process(function(layout, id))
                    .uid("window-" + layout)
                    .sinkTo(new DiscardingSink<>());
            JobClient job = env.executeAsync("state layout " + layout + " on " + backend);
            long deadline = System.nanoTime() + Duration.ofMinutes(30).toNanos();
            while (watch.count() < events && System.nanoTime() < deadline) {
                LockSupport.parkNanos(Duration.ofMillis(100).toNanos());
            }
            double rate = watch.eventsPerSecond();
            long canonical = PipelineBench.bytes(job.triggerSavepoint(dir.resolve("canonical").toUri().toString(),
                    SavepointFormatType.CANONICAL).get());
            long nativeBytes = PipelineBench.bytes(job.stopWithSavepoint(false, dir.resolve("native").toUri()
                    .toString(), SavepointFormatType.NATIVE).get());
            PipelineBench.WATCHES.remove(id);
            return new Result(layout, backend, users, rate, (double) canonical / users, (double) nativeBytes / users);
        }
    }

    private static KeyedProcessFunction<String, Click, Integer> function(Layout layout, String watch) {
        return switch (layout) {
            case VALUE_RING -> new ValueRing(watch);
            case LIST -> new ListLayout(watch);
            case MAP -> new MapLayout(watch);
        };
    }

    /** A click as the layouts see it; a null user is the idle tail after the timed part. */
    public static final class Click {
        public String user;
        public String item;
        public String category;
        public int type;
        public long time;

        public Click() {}
    }

    /** Every user's events a minute apart, users interleaved, mostly distinct items and categories: full windows. */
    static final class Clicks implements GeneratorFunction<Long, Click> {
        private static final long serialVersionUID = 1L;
        private final int users;
        private final long events;

        Clicks(int users, long events) {
            this.users = users;
            this.events = events;
        }

        @Override
        public Click map(Long i) {
            Click c = new Click();
            if (i >= events) {
                LockSupport.parkNanos(Duration.ofMillis(5).toNanos());
                return c;
            }
            int user = (int) (i % users);
            long step = i / users;
            c.user = Integer.toString(100_000 + user);
            c.item = Integer.toString(1_000_000 + (int) ((i * 2654435761L) % 4_000_000));
            c.category = Integer.toString(2_000_000 + (int) ((i * 40503L) % 9_000));
            c.type = step % 10 == 9 ? 2 : 1;
            c.time = START + step * 60_000L + user % 60_000;
            return c;
        }
    }

    /** The scorer's layout: read the packed window, append, write, read the columns out. */
    static final class ValueRing extends KeyedProcessFunction<String, Click, Integer> {
        private static final long serialVersionUID = 1L;
        private final String watch;
        private transient ValueState<byte[]> window;
        private transient PackedWindow view;
        private transient Columns columns;

        ValueRing(String watch) {
            this.watch = watch;
        }

        @Override
        public void open(OpenContext context) {
            window = getRuntimeContext().getState(
                    new ValueStateDescriptor<>("window", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
            view = new PackedWindow(N, HORIZON_MS, TYPES);
            columns = new Columns();
        }

        @Override
        public void processElement(Click c, Context ctx, Collector<Integer> out) throws Exception {
            view.wrap(window.value());
            if (view.append(Fnv1a64.hash(c.item), Fnv1a64.hash(c.category), c.type, c.time)) {
                window.update(view.bytes());
                columns.size = view.copyTo(columns.items, columns.categories, columns.types, columns.times);
            }
            PipelineBench.WATCHES.get(watch).tick();
        }
    }

    /** One {@code long[3]} per event (item hash, category hash, time and type); any eviction rewrites the list. */
    static final class ListLayout extends KeyedProcessFunction<String, Click, Integer> {
        private static final long serialVersionUID = 1L;
        private final String watch;
        private transient ListState<long[]> window;
        private transient Columns columns;

        ListLayout(String watch) {
            this.watch = watch;
        }

        @Override
        public void open(OpenContext context) {
            window = getRuntimeContext().getListState(
                    new ListStateDescriptor<>("window", PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
            columns = new Columns();
        }

        @Override
        public void processElement(Click c, Context ctx, Collector<Integer> out) throws Exception {
            Iterable<long[]> stored = window.get();
            List<long[]> events = new ArrayList<>(N + 1);
            if (stored != null) {
                for (long[] e : stored) {
                    events.add(e);
                }
            }
            long[] e = {Fnv1a64.hash(c.item), Fnv1a64.hash(c.category), c.time << 16 | c.type};
            if (!columns.isDuplicate(events, e)) {
                int drop = Math.max(0, events.size() + 1 - N);
                while (drop < events.size() && WindowRule.outsideHorizon(events.get(drop)[2] >> 16, c.time,
                        HORIZON_MS)) {
                    drop++;
                }
                if (drop == 0) {
                    window.add(e);
                    events.add(e);
                } else {
                    events = new ArrayList<>(events.subList(drop, events.size()));
                    events.add(e);
                    window.update(events);
                }
                columns.fill(events);
            }
            PipelineBench.WATCHES.get(watch).tick();
        }
    }

    /** Ring slots 0..N-1 as map entries, and the head and count under key -1: one entry written per event. */
    static final class MapLayout extends KeyedProcessFunction<String, Click, Integer> {
        private static final long serialVersionUID = 1L;
        private static final int META = -1;
        private final String watch;
        private transient MapState<Integer, long[]> window;
        private transient Columns columns;
        private transient long[][] slots;

        MapLayout(String watch) {
            this.watch = watch;
        }

        @Override
        public void open(OpenContext context) {
            window = getRuntimeContext().getMapState(new MapStateDescriptor<>("window", Types.INT,
                    PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
            columns = new Columns();
            slots = new long[N][];
        }

        @Override
        public void processElement(Click c, Context ctx, Collector<Integer> out) throws Exception {
            long[] meta = null;
            // One pass over the user's entries (on RocksDB, one prefix scan) rather than N point reads.
            for (Map.Entry<Integer, long[]> entry : window.entries()) {
                if (entry.getKey() == META) {
                    meta = entry.getValue();
                } else {
                    slots[entry.getKey()] = entry.getValue();
                }
            }
            int head = meta == null ? 0 : (int) meta[0];
            int count = meta == null ? 0 : (int) meta[1];
            List<long[]> events = new ArrayList<>(N + 1);
            for (int i = 0; i < count; i++) {
                events.add(slots[(head + i) % N]);
            }
            long[] e = {Fnv1a64.hash(c.item), Fnv1a64.hash(c.category), c.time << 16 | c.type};
            if (!columns.isDuplicate(events, e)) {
                int drop = Math.max(0, count + 1 - N);
                while (drop < count && WindowRule.outsideHorizon(events.get(drop)[2] >> 16, c.time, HORIZON_MS)) {
                    drop++;
                }
                int newSlot = (head + count) % N;
                for (int i = 0; i < drop; i++) {
                    // The slot the new event takes over is overwritten, not removed.
                    if ((head + i) % N != newSlot) {
                        window.remove((head + i) % N);
                    }
                }
                head = (head + drop) % N;
                count -= drop;
                window.put((head + count) % N, e);
                count++;
                window.put(META, new long[] {head, count});
                events = new ArrayList<>(events.subList(drop, events.size()));
                events.add(e);
                columns.fill(events);
            }
            PipelineBench.WATCHES.get(watch).tick();
        }
    }

    /** The encoder's input columns, filled per event as the scorer fills them. */
    static final class Columns {
        final long[] items = new long[N];
        final long[] categories = new long[N];
        final int[] types = new int[N];
        final long[] times = new long[N];
        int size;

        boolean isDuplicate(List<long[]> events, long[] e) {
            for (int i = events.size() - 1; i >= 0; i--) {
                long[] w = events.get(i);
                if (w[2] >> 16 < e[2] >> 16) return false;
                if (w[0] == e[0] && w[2] == e[2]) return true;
            }
            return false;
        }

        void fill(List<long[]> events) {
            size = events.size();
            for (int i = 0; i < size; i++) {
                long[] w = events.get(i);
                items[i] = w[0];
                categories[i] = w[1];
                types[i] = (int) (w[2] & 0xffff);
                times[i] = w[2] >> 16;
            }
        }
    }
}

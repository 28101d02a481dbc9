package dev.seqscore.e2e.drill;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.seqscore.avro.Alert;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.e2e.drill.Drill.Injection;
import dev.seqscore.e2e.drill.Drill.Kind;
import dev.seqscore.e2e.drill.Expected.ScoreKey;
import dev.seqscore.e2e.probe.JvmProbe;
import dev.seqscore.offline.files.FileRecord;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The drill's verdict: committed output against the backtest, recoveries, stalls, memory and class loaders, as a
 * readable text and as one JSON object.
 */
final class Report {
    /** Scores are floats from ONNX Runtime: equal within this, whatever the batch the event was scored in. */
    static final double SCORE_TOLERANCE = 1e-5;

    private final StringBuilder text = new StringBuilder();
    private final ObjectNode json = Drill.json();
    private boolean passed;

    private Report() {}

    /** Outputs compared with what was expected, by identity. */
    record Comparison(int expected, int lost, int duplicated, int unexpected, int mismatched, double maxDiff,
            List<String> examples) {}

    static Comparison compareScores(Map<ScoreKey, double[]> expected, Map<ScoreKey, Integer> seen,
            Map<ScoreKey, Map<String, Double>> values, List<String> outputNames) {
        int lost = 0;
        int dup = 0;
        int mismatched = 0;
        double maxDiff = 0;
        List<String> examples = new ArrayList<>();
        for (Map.Entry<ScoreKey, double[]> e : expected.entrySet()) {
            int n = seen.getOrDefault(e.getKey(), 0);
            if (n == 0) {
                lost++;
                example(examples, "lost score " + e.getKey());
                continue;
            }
            dup += n - 1;
            if (n > 1) {
                example(examples, "score x" + n + " " + e.getKey());
            }
            Map<String, Double> got = values.get(e.getKey());
            for (int o = 0; o < outputNames.size(); o++) {
                Double v = got == null ? null : got.get(outputNames.get(o));
                double diff = v == null ? Double.POSITIVE_INFINITY : Math.abs(v - e.getValue()[o]);
                maxDiff = Math.max(maxDiff, diff);
                if (diff > SCORE_TOLERANCE) {
                    mismatched++;
                    example(examples, "score of " + e.getKey() + " " + outputNames.get(o) + ": " + v + ", backtest "
                            + e.getValue()[o]);
                    break;
                }
            }
        }
        int unexpected = 0;
        for (Map.Entry<ScoreKey, Integer> e : seen.entrySet()) {
            if (!expected.containsKey(e.getKey())) {
                unexpected += e.getValue();
                example(examples, "unexpected score " + e.getKey());
            }
        }
        return new Comparison(expected.size(), lost, dup, unexpected, mismatched, maxDiff, examples);
    }

    static Comparison compareAlerts(Map<String, Alert> expected, Map<String, Integer> seen) {
        int lost = 0;
        int dup = 0;
        List<String> examples = new ArrayList<>();
        for (Map.Entry<String, Alert> e : expected.entrySet()) {
            int n = seen.getOrDefault(e.getKey(), 0);
            Alert a = e.getValue();
            String what = a.getAlertType() + " of " + a.getUserId() + " at " + a.getEventTime() + " (score "
                    + a.getScore() + ", threshold " + a.getThreshold() + ")";
            if (n == 0) {
                lost++;
                example(examples, "lost alert " + what);
            } else if (n > 1) {
                dup += n - 1;
                example(examples, "alert x" + n + " " + what);
            }
        }
        int unexpected = 0;
        for (Map.Entry<String, Integer> e : seen.entrySet()) {
            if (!expected.containsKey(e.getKey())) {
                unexpected += e.getValue();
                example(examples, "unexpected alert " + e.getKey());
            }
        }
        return new Comparison(expected.size(), lost, dup, unexpected, 0, 0, examples);
    }

    private static void example(List<String> examples, String s) {
        if (examples.size() < 10) {
            examples.add(s);
        }
    }

    static Report of(Drill.Run r, double rate) {
        return new Report().build(r, rate);
    }

    private Report build(Drill.Run r, double rate) {
        List<String> outputNames = r.outputNames;
        Comparison scores = compareScores(r.expected.scores(), r.watcher.scoreCounts(), r.watcher.scoreValues(),
                outputNames);
        Comparison alerts = compareAlerts(r.expected.alerts(), r.watcher.alertCounts());
        List<DeadLetter> dead = r.watcher.deadLetters();

        // Stalls: how many distinct outputs the input in Kafka called for at each moment.
        long[] due = dueTimes(r);
        List<Stalls.Point> points = r.watcher.progress().stream()
                .map(p -> new Stalls.Point(p.nanos(), p.distinct())).toList();
        List<Stalls.Stall> stalls = Stalls.find(points, r.firstRunningNanos, r.endNanos, t -> {
            int i = Arrays.binarySearch(due, t);
            return i >= 0 ? i + 1 : -i - 1;
        });
        Stalls.Stall longest = Stalls.longest(stalls);
        // A model swap explains no stall: output must flow through it.
        List<Stalls.Stall> unexplained = stalls.stream().filter(s -> r.injections.stream()
                .filter(i -> i.kind != Kind.MODEL_SWAP)
                .noneMatch(i -> s.overlaps(i.startNanos, i.endNanos()))).toList();
        Stalls.Stall longestUnexplained = Stalls.longest(unexplained);

        Map<Kind, Integer> counts = new TreeMap<>();
        double maxRecovery = 0;
        boolean allRecovered = true;
        for (Injection i : r.injections) {
            counts.merge(i.kind, 1, Integer::sum);
            if (i.kind == Kind.TM_KILL || i.kind == Kind.BROKER_RESTART) {
                if (Double.isNaN(i.recoverySeconds())) {
                    allRecovered = false;
                } else {
                    maxRecovery = Math.max(maxRecovery, i.recoverySeconds());
                }
            }
        }

        // RSS of the TaskManagers that lived through every resubmission, summed: before the first and after each.
        List<Injection> resubs = r.injections.stream().filter(i -> i.kind == Kind.RESUBMISSION && i.samples != null)
                .toList();
        double[] tmRssMb = tmRssMb(r.baseline, resubs);
        Double rssGrowth = tmRssMb == null ? null : (tmRssMb[tmRssMb.length - 1] - tmRssMb[0]) / resubs.size();
        Double lateGrowth = tmRssMb == null || tmRssMb.length < 5 ? null : lateSlope(tmRssMb);

        int leaked = r.leaks == null ? -1 : r.leaks.total();
        int leakedAfterCancel = r.leaksAfterCancel == null ? -1 : r.leaksAfterCancel.total();
        int accumulated = accumulatedLoaders(resubs);

        // Model swaps: each output's model version against the backtest's with the same schedule; memory over swaps.
        boolean swapsRan = r.swapsRequested > 0;
        int swapsDone = r.swapSeconds.size();
        long versionMismatches = versionMismatches(r.expected.versions(), r.watcher.scoreVersions(),
                r.expected.alerts(), r.watcher.alertVersions()) + r.watcher.versionChanges();
        SwapMemory swapMemory = SwapMemory.of(r.swapLooks);
        boolean swapsPassed = !swapsRan || (swapsDone == r.swapsRequested && versionMismatches == 0
                && (swapMemory == null || swapMemory.passed()));
        // Gates: no earlier job's loader left once full GCs have had a minute (leaked_classloaders), none at all after
        // the final cancel, and no growth from the first resubmission to the last (what killed the JobManager at the
        // 11th job before the fix).
        passed = scores.lost() == 0 && scores.duplicated() == 0 && alerts.lost() == 0 && alerts.duplicated() == 0
                && scores.unexpected() == 0 && alerts.unexpected() == 0 && scores.mismatched() == 0
                && leaked == 0 && leakedAfterCancel == 0 && accumulated <= 0 && allRecovered && r.failures.isEmpty()
                && swapsPassed;

        line("");
        line("== SeqScore failover drill ==");
        if (r.setup != null) {
            line("cluster    " + r.setup.describe());
        }
        line(String.format(Locale.ROOT, "input      %,d events of %d users (+%d flush events), %d partitions, %.0f "
                        + "events/s while injecting; job parallelism %d on %d TaskManagers x 2 slots, exactly-once, "
                        + "RocksDB, checkpoints every %d ms", r.input.events(), r.input.users(),
                r.input.partitionCount(), r.input.partitionCount(), rate, Drill.PARALLELISM, Drill.TASK_MANAGERS,
                r.checkpointInterval.toMillis()));
        line(String.format(Locale.ROOT, "jobs       %d submissions: %s", r.jobs.size(), String.join(", ", r.jobs)));
        line("injections (recovery = injection to job RUNNING again with committed output growing):");
        for (Injection i : r.injections) {
            line("  " + r.describe(i));
        }
        if (!resubs.isEmpty() && r.baseline != null) {
            line("memory after each REST resubmission (after a full GC; RSS MB / ONNX Runtime libraries mapped / "
                    + "user-code class loaders):");
            line("  before       " + samples(r.baseline, r.processNames(r.baseline)));
            for (Injection i : resubs) {
                line(String.format(Locale.ROOT, "  after #%d     %s", i.number, samples(i.samples,
                        r.processNames(i.samples))));
            }
        }
        line(String.format(Locale.ROOT, "scores     %,d expected: %d lost, %d duplicated, %d unexpected, %d differ "
                        + "by more than %.0e (largest difference %.2e)", scores.expected(), scores.lost(),
                scores.duplicated(), scores.unexpected(), scores.mismatched(), SCORE_TOLERANCE, scores.maxDiff()));
        line(String.format(Locale.ROOT, "alerts     %,d expected: %d lost, %d duplicated, %d unexpected",
                alerts.expected(), alerts.lost(), alerts.duplicated(), alerts.unexpected()));
        Map<String, Integer> deadByReason = new TreeMap<>();
        dead.forEach(d -> deadByReason.merge(d.getReason(), 1, Integer::sum));
        line(String.format(Locale.ROOT, "dead       %d dead letters (backtest: %d)%s", dead.size(),
                r.expected.deadLetters().size(), deadByReason.isEmpty() ? "" : " " + deadByReason));
        scores.examples().forEach(e -> line("  " + e));
        alerts.examples().forEach(e -> line("  " + e));
        line(String.format(Locale.ROOT, "stalls     longest %s; longest outside every injection %s",
                stall(longest, r), stall(longestUnexplained, r)));
        line("leaks      user-code class loaders alive after a full GC (polled up to 60 s) beyond the running job's: "
                + r.leaks);
        line("           after cancelling the last job as well: " + r.leaksAfterCancel);
        if (rssGrowth != null) {
            line(String.format(Locale.ROOT, "memory     TaskManager RSS growth per resubmission: %+.1f MB over all %d "
                    + "(%s MB)%s; measured, not judged", rssGrowth, resubs.size(), deltas(tmRssMb),
                    lateGrowth == null ? "" : String.format(Locale.ROOT, "; %+.1f MB over the last %d (least-squares "
                            + "slope after resubmissions %d..%d)", lateGrowth, lateCount(tmRssMb),
                            tmRssMb.length - lateCount(tmRssMb), tmRssMb.length - 1)));
        }
        if (swapsRan) {
            line(String.format(Locale.ROOT, "swaps      %d of %d model swaps took effect; model version of every "
                    + "score and alert against the backtest with the same schedule: %d differ", swapsDone,
                    r.swapsRequested, versionMismatches));
            Map<String, Integer> byVersion = new TreeMap<>();
            r.watcher.scoreVersions().values().forEach(v -> byVersion.merge(v, 1, Integer::sum));
            line("           scores read by model version: " + byVersion);
        }
        if (swapMemory != null) {
            swapMemory.lines().forEach(l -> line("           " + l));
        }
        r.failures.forEach(f -> line("FAILURE    " + f));
        line("verdict    " + (passed ? "PASS: nothing lost, nothing duplicated, no class loader leaked"
                + (swapsRan ? ", every output of the model the schedule assigns" : "")
                : "FAIL" + (reasons(scores, alerts, Math.max(leaked, leakedAfterCancel), accumulated, allRecovered,
                        r) + swapReasons(r, swapsDone, versionMismatches, swapMemory)).replace(": , ", ": ")));
        line("logs       " + r.workDir);

        json.put("tm_kills", counts.getOrDefault(Kind.TM_KILL, 0));
        json.put("broker_restarts", counts.getOrDefault(Kind.BROKER_RESTART, 0));
        json.put("savepoint_resumes", counts.getOrDefault(Kind.SAVEPOINT_RESUME, 0));
        json.put("resubmissions", counts.getOrDefault(Kind.RESUBMISSION, 0));
        json.put("expected_alerts", alerts.expected());
        json.put("lost_alerts", alerts.lost());
        json.put("duplicate_alerts", alerts.duplicated());
        json.put("expected_scores", scores.expected());
        json.put("lost_scores", scores.lost());
        json.put("duplicate_scores", scores.duplicated());
        putSeconds("max_recovery_s", allRecovered ? maxRecovery : Double.NaN);
        putSeconds("max_stall_s", longest == null ? 0 : longest.seconds());
        if (rssGrowth == null) {
            json.putNull("tm_rss_growth_mb_per_resubmission");
        } else {
            json.put("tm_rss_growth_mb_per_resubmission", Math.round(rssGrowth * 10) / 10.0);
        }
        if (lateGrowth == null) {
            json.putNull("tm_rss_growth_mb_per_resubmission_late");
        } else {
            json.put("tm_rss_growth_mb_per_resubmission_late", Math.round(lateGrowth * 10) / 10.0);
        }
        json.put("leaked_classloaders", leaked);
        json.put("classloaders_after_last_cancel", leakedAfterCancel);
        json.put("unexpected_alerts", alerts.unexpected());
        json.put("unexpected_scores", scores.unexpected());
        json.put("mismatched_scores", scores.mismatched());
        json.put("dead_letters", dead.size());
        putSeconds("max_stall_outside_injections_s", longestUnexplained == null ? 0 : longestUnexplained.seconds());
        if (r.setup != null) {
            json.put("jar", r.setup.jarKind().label());
            json.put("allocator", r.setup.allocator().label());
            json.put("heap_pre_touch", r.setup.heapPreTouched());
        }
        if (r.jobArgs != null) {
            int i = r.jobArgs.indexOf("--scoring");
            json.put("scoring", i >= 0 && i + 1 < r.jobArgs.size() ? r.jobArgs.get(i + 1) : "incremental");
        }
        if (swapsRan) {
            json.put("model_swaps", swapsDone);
            json.put("version_mismatches", versionMismatches);
            if (swapMemory == null) {
                json.putNull("tm_rss_growth_mb_per_swap");
            } else {
                json.put("tm_rss_growth_mb_per_swap", Math.round(swapMemory.worstSlope() * 10) / 10.0);
                json.put("tm_rss_growth_mb_per_swap_all_tms", Math.round(swapMemory.sumSlope() * 10) / 10.0);
                json.put("tm_live_sessions_before_swaps", swapMemory.sessionsBefore());
                json.put("tm_live_sessions_after_swaps", swapMemory.sessionsAfter());
                json.put("tm_live_scorers_before_swaps", swapMemory.scorersBefore());
                json.put("tm_live_scorers_after_swaps", swapMemory.scorersAfter());
                json.put("tm_classloaders_before_swaps", swapMemory.loadersBefore());
                json.put("tm_classloaders_after_swaps", swapMemory.loadersAfter());
            }
        }
        json.put("passed", passed);
        return this;
    }

    /**
     * Outputs read whose model version is not the one the backtest with the same schedule gave the same event; an
     * output never read is counted as lost, not here.
     */
    static long versionMismatches(Map<ScoreKey, String> expectedScores, Map<ScoreKey, String> seenScores,
            Map<String, Alert> expectedAlerts, Map<String, String> seenAlerts) {
        long n = 0;
        for (Map.Entry<ScoreKey, String> e : seenScores.entrySet()) {
            String want = expectedScores.get(e.getKey());
            if (want != null && !want.equals(e.getValue())) {
                n++;
            }
        }
        for (Map.Entry<String, String> e : seenAlerts.entrySet()) {
            Alert want = expectedAlerts.get(e.getKey());
            if (want != null && !want.getModelVersion().equals(e.getValue())) {
                n++;
            }
        }
        return n;
    }

    private static String swapReasons(Drill.Run r, int done, long mismatches, SwapMemory memory) {
        List<String> why = new ArrayList<>();
        if (r.swapsRequested > 0 && done < r.swapsRequested) {
            why.add("only " + done + " of " + r.swapsRequested + " model swaps took effect");
        }
        if (mismatches > 0) {
            why.add(mismatches + " outputs of another model version than the backtest's");
        }
        if (memory != null && !memory.passed()) {
            why.add("model swaps: " + memory.failure());
        }
        return why.isEmpty() ? "" : ", " + String.join(", ", why);
    }

    /**
     * The TaskManagers over the swaps (looked at after full GCs before the first and after each): the RSS slope per
     * swap of each one that lived through all of them, robust to single outliers (Theil-Sen: the median of the slopes
     * between every two samples), and live sessions, scorers and class loaders before and after.
     */
    record SwapMemory(int swaps, List<String> names, List<double[]> rssMb, double[] slopes, double sumSlope,
            int sessionsBefore, int sessionsAfter, int scorersBefore, int scorersAfter, int loadersBefore,
            int loadersAfter) {
        static SwapMemory of(List<List<Drill.TmLook>> looks) {
            if (looks.size() < 2) {
                return null;
            }
            List<Drill.TmLook> first = looks.get(0);
            List<Drill.TmLook> last = looks.get(looks.size() - 1);
            List<String> names = new ArrayList<>();
            List<double[]> series = new ArrayList<>();
            for (Drill.TmLook tm : first) {
                double[] mb = new double[looks.size()];
                boolean all = true;
                for (int i = 0; i < looks.size() && all; i++) {
                    Drill.TmLook same = looks.get(i).stream().filter(t -> t.pid() == tm.pid()).findFirst()
                            .orElse(null);
                    all = same != null;
                    mb[i] = same == null ? 0 : same.rssKb() / 1024.0;
                }
                if (all) {
                    names.add(tm.name());
                    series.add(mb);
                }
            }
            double[] slopes = series.stream().mapToDouble(SwapMemory::theilSen).toArray();
            double[] sum = new double[looks.size()];
            series.forEach(mb -> {
                for (int i = 0; i < mb.length; i++) {
                    sum[i] += mb[i];
                }
            });
            return new SwapMemory(looks.size() - 1, names, series, slopes, series.isEmpty() ? 0 : theilSen(sum),
                    Drill.TmLook.sum(first, Drill.TmLook::sessions), Drill.TmLook.sum(last, Drill.TmLook::sessions),
                    Drill.TmLook.sum(first, Drill.TmLook::scorers), Drill.TmLook.sum(last, Drill.TmLook::scorers),
                    Drill.TmLook.sum(first, Drill.TmLook::loaders), Drill.TmLook.sum(last, Drill.TmLook::loaders));
        }

        /** The median of the slopes between every two samples. */
        static double theilSen(double[] y) {
            List<Double> s = new ArrayList<>();
            for (int i = 0; i < y.length; i++) {
                for (int j = i + 1; j < y.length; j++) {
                    s.add((y[j] - y[i]) / (j - i));
                }
            }
            if (s.isEmpty()) {
                return 0;
            }
            s.sort(Double::compare);
            int n = s.size();
            return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
        }

        /** The largest per-TaskManager slope: the bound is per TaskManager. */
        double worstSlope() {
            return Arrays.stream(slopes).max().orElse(0);
        }

        boolean judged() {
            return swaps >= Drill.MEMORY_GATE_MIN_SWAPS;
        }

        String failure() {
            List<String> why = new ArrayList<>();
            if (judged() && worstSlope() > Drill.MAX_MB_PER_SWAP) {
                why.add(String.format(Locale.ROOT, "TaskManager RSS grows %.1f MB per swap (at most %.0f)",
                        worstSlope(), Drill.MAX_MB_PER_SWAP));
            }
            if (sessionsAfter > sessionsBefore) {
                why.add((sessionsAfter - sessionsBefore) + " more live ORT sessions after the swaps than before");
            }
            if (scorersAfter > scorersBefore) {
                why.add((scorersAfter - scorersBefore) + " more live scorers after the swaps than before");
            }
            if (loadersAfter > loadersBefore) {
                why.add((loadersAfter - loadersBefore) + " more user-code class loaders after the swaps than before");
            }
            return String.join(", ", why);
        }

        boolean passed() {
            return failure().isEmpty();
        }

        List<String> lines() {
            List<String> out = new ArrayList<>();
            for (int t = 0; t < names.size(); t++) {
                double[] mb = rssMb.get(t);
                out.add(String.format(Locale.ROOT, "%s RSS %.0f -> %.0f MB over %d swaps: %+.2f MB per swap "
                        + "(Theil-Sen), steps %s", names.get(t), mb[0], mb[mb.length - 1], swaps, slopes[t],
                        deltas(mb)));
            }
            out.add(String.format(Locale.ROOT, "after full GCs, before the first swap -> after the last: live ORT "
                    + "sessions %d -> %d, scorers %d -> %d, user-code class loaders %d -> %d; RSS slope %s "
                    + "(at most %.0f MB per swap per TaskManager%s)", sessionsBefore, sessionsAfter, scorersBefore,
                    scorersAfter, loadersBefore, loadersAfter, String.format(Locale.ROOT, "%+.2f MB per swap, "
                            + "%+.2f summed over them", worstSlope(), sumSlope), Drill.MAX_MB_PER_SWAP,
                    judged() ? "" : "; not judged under " + Drill.MEMORY_GATE_MIN_SWAPS + " swaps"));
            return out;
        }
    }

    private void putSeconds(String key, double seconds) {
        if (Double.isNaN(seconds)) {
            json.putNull(key);
        } else {
            json.put(key, Math.round(seconds * 10) / 10.0);
        }
    }

    /**
     * User-code class loaders alive after the last resubmission minus after the first, over every process: above 0
     * when each redeploy leaves one more behind. 0 with fewer than two resubmissions.
     */
    static int accumulatedLoaders(List<Injection> resubs) {
        if (resubs.size() < 2) {
            return 0;
        }
        return loaders(resubs.get(resubs.size() - 1).samples) - loaders(resubs.get(0).samples);
    }

    private static int loaders(JvmProbe.Sample[] samples) {
        int n = 0;
        for (JvmProbe.Sample s : samples) {
            n += s.userCodeClassLoaders();
        }
        return n;
    }

    private static String reasons(Comparison scores, Comparison alerts, int leaked, int accumulated, boolean recovered,
            Drill.Run r) {
        List<String> why = new ArrayList<>();
        if (scores.lost() + alerts.lost() > 0) {
            why.add("lost output");
        }
        if (scores.duplicated() + alerts.duplicated() > 0) {
            why.add("duplicated output");
        }
        if (scores.unexpected() + alerts.unexpected() > 0) {
            why.add("output the backtest does not have");
        }
        if (scores.mismatched() > 0) {
            why.add("scores that differ from the backtest");
        }
        if (leaked < 0) {
            why.add("class loaders not measured");
        } else if (leaked > 0) {
            why.add(leaked + " leaked class loaders");
        }
        if (accumulated > 0) {
            why.add(accumulated + " more class loaders alive after the last resubmission than after the first "
                    + "(they accumulate with every redeploy)");
        }
        if (!recovered) {
            why.add("an injection without recovery");
        }
        if (!r.failures.isEmpty()) {
            why.add(r.failures.size() + " failure(s) above");
        }
        return ": " + String.join(", ", why);
    }

    private static String stall(Stalls.Stall s, Drill.Run r) {
        if (s == null) {
            return "none";
        }
        String during = r.injections.stream().filter(i -> s.overlaps(i.startNanos, i.endNanos()))
                .map(i -> "injection " + i.number).reduce((a, b) -> a + ", " + b).map(x -> ", during " + x)
                .orElse("");
        return String.format(Locale.ROOT, "%.1f s (+%.0f s to +%.0f s of the run%s)", s.seconds(),
                (s.startNanos() - r.firstRunningNanos) / 1e9, (s.endNanos() - r.firstRunningNanos) / 1e9, during);
    }

    /**
     * The summed RSS (MB) of the TaskManagers that lived through every resubmission: before the first (index 0), then
     * after each; null without resubmissions.
     */
    static double[] tmRssMb(JvmProbe.Sample[] baseline, List<Injection> resubs) {
        if (resubs.isEmpty() || baseline == null) {
            return null;
        }
        JvmProbe.Sample[] last = resubs.get(resubs.size() - 1).samples;
        List<Long> pids = new ArrayList<>();
        for (int t = 1; t < baseline.length; t++) {
            long pid = baseline[t].pid();
            if (Arrays.stream(last).anyMatch(s -> s.pid() == pid)) {
                pids.add(pid);
            }
        }
        double[] out = new double[resubs.size() + 1];
        out[0] = sumRss(baseline, pids);
        for (int i = 0; i < resubs.size(); i++) {
            out[i + 1] = sumRss(resubs.get(i).samples, pids);
        }
        return out;
    }

    private static double sumRss(JvmProbe.Sample[] samples, List<Long> pids) {
        long kb = 0;
        for (JvmProbe.Sample s : samples) {
            if (pids.contains(s.pid())) {
                kb += s.rssKb();
            }
        }
        return kb / 1024.0;
    }

    /** How many of the last samples the late slope is fitted over: the second half, at least 3. */
    static int lateCount(double[] rss) {
        return Math.max(3, rss.length / 2);
    }

    /**
     * The least-squares slope (MB per resubmission) of the last {@link #lateCount} samples: the growth once the
     * first jobs' one-off costs (heap pages touched for the first time, the JIT compiling the job's code) are paid.
     */
    static double lateSlope(double[] rss) {
        int n = lateCount(rss);
        int from = rss.length - n;
        double mx = (n - 1) / 2.0;
        double my = 0;
        for (int i = 0; i < n; i++) {
            my += rss[from + i] / n;
        }
        double num = 0;
        double den = 0;
        for (int i = 0; i < n; i++) {
            num += (i - mx) * (rss[from + i] - my);
            den += (i - mx) * (i - mx);
        }
        return num / den;
    }

    private static String deltas(double[] rss) {
        StringBuilder sb = new StringBuilder();
        for (int i = 1; i < rss.length; i++) {
            sb.append(i == 1 ? "" : ", ").append(String.format(Locale.ROOT, "%+.0f", rss[i] - rss[i - 1]));
        }
        return sb.toString();
    }

    private static String samples(JvmProbe.Sample[] samples, List<String> names) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < samples.length; i++) {
            JvmProbe.Sample s = samples[i];
            sb.append(String.format(Locale.ROOT, "%s %.0f/%d/%d   ", names.get(i), s.rssMb(), s.ortLibraries(),
                    s.userCodeClassLoaders()));
        }
        return sb.toString().trim();
    }

    /**
     * For each expected output, when the input record it answers was acknowledged by Kafka (sorted); an output whose
     * record never was counts as due never.
     */
    private static long[] dueTimes(Drill.Run r) {
        Map<ScoreKey, Integer> rowOf = new HashMap<>();
        List<FileRecord> rows = r.input.rows();
        for (int i = 0; i < rows.size(); i++) {
            var e = rows.get(i).event();
            rowOf.putIfAbsent(new ScoreKey(e.getUserId(), e.getEventTime().toEpochMilli(), e.getEventType(),
                    e.getItemId()), i);
        }
        List<Long> due = new ArrayList<>();
        for (ScoreKey k : r.expected.scores().keySet()) {
            due.add(ackedAt(r, rowOf.get(k)));
        }
        for (Alert a : r.expected.alerts().values()) {
            due.add(ackedAt(r, rowOf.get(new ScoreKey(a.getUserId(), a.getEventTime().toEpochMilli(),
                    a.getEventType(), a.getItemId()))));
        }
        return due.stream().mapToLong(Long::longValue).sorted().toArray();
    }

    private static long ackedAt(Drill.Run r, Integer row) {
        if (row == null) {
            return Long.MAX_VALUE;
        }
        long t = r.feeder.ackedAt(row);
        return t == 0 ? Long.MAX_VALUE : t;
    }

    private void line(String s) {
        text.append(s).append('\n');
    }

    String text() {
        return text.toString();
    }

    String json() {
        return json.toString();
    }

    boolean passed() {
        return passed;
    }
}

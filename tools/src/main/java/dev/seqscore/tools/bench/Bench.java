package dev.seqscore.tools.bench;

import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Option;
import dev.seqscore.options.OptionSet;
import dev.seqscore.options.OptionValues;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Locale;

/**
 * {@code bin/seqscore bench}: runs {@link ScoringBenchmark} with JMH and prints the encoder's and ONNX Runtime's
 * cost per event at batch sizes 1 and 64.
 */
public final class Bench {
    private Bench() {}

    static final Option<String> BUNDLE = Option.string("bundle", "models/default",
            "model bundle directory with golden.jsonl (its golden windows are the benchmark's input)");
    static final Option<String> BATCH = Option.string("batch", "1,64", "batch sizes, comma-separated");
    static final Option<String> THREADS = Option.string("threads", "1", "ONNX Runtime intra-op threads, comma-separated");
    static final Option<Boolean> QUICK = Option.flag("quick", "1 s iterations, 2 warm-up + 3 measured (default 2 s, 3 + 5)");
    static final OptionSet OPTIONS = new OptionSet().add(BUNDLE, BATCH, THREADS, QUICK, OptionSet.HELP);

    public static void main(String[] args) throws RunnerException {
        OptionValues v;
        try {
            v = OPTIONS.parse(args);
        } catch (ConfigException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(2);
            return;
        }
        if (v.get(OptionSet.HELP)) {
            System.out.println(OPTIONS.usage("bin/seqscore bench [options]",
                    "JMH (1 fork) over the bundle's golden windows: FeatureEncoder and OnnxScorer cost per event."));
            return;
        }
        String bundle = v.get(BUNDLE);
        String batches = v.get(BATCH);
        String threads = v.get(THREADS);
        boolean quick = v.get(QUICK);
        if (!Files.isRegularFile(Path.of(bundle, "golden.jsonl"))) {
            System.err.println("error: " + bundle + " is not a model bundle with golden.jsonl");
            System.exit(2);
        }
        TimeValue iteration = TimeValue.seconds(quick ? 1 : 2);
        ChainedOptionsBuilder options = new OptionsBuilder()
                .include(ScoringBenchmark.class.getName())
                .param("bundle", Path.of(bundle).toAbsolutePath().toString())
                .param("batch", batches.split(","))
                .param("threads", threads.split(","))
                .forks(1)
                .warmupIterations(quick ? 2 : 3)
                .warmupTime(iteration)
                .measurementIterations(quick ? 3 : 5)
                .measurementTime(iteration)
                .shouldFailOnError(true);
        Collection<RunResult> results = new Runner(options.build()).run();

        System.out.println();
        System.out.printf("%-8s %6s %8s %16s %16s%n", "method", "batch", "threads", "us/batch", "us/event");
        for (RunResult r : results) {
            String method = r.getParams().getBenchmark().replaceAll(".*\\.", "");
            int batch = Integer.parseInt(r.getParams().getParam("batch"));
            double perBatch = r.getPrimaryResult().getScore();
            double error = r.getPrimaryResult().getScoreError();
            System.out.printf(Locale.ROOT, "%-8s %6d %8s %8.2f ± %5.2f %8.3f ± %5.3f%n", method, batch,
                    r.getParams().getParam("threads"), perBatch, error, perBatch / batch, error / batch);
        }
        System.out.println("cores available: " + Runtime.getRuntime().availableProcessors());
    }
}

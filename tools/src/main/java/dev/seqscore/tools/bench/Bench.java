package dev.seqscore.tools.bench;

import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

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

    public static void main(String[] args) throws RunnerException {
        String bundle = "models/default";
        String batches = "1,64";
        String threads = "1";
        boolean quick = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bundle" -> bundle = value(args, ++i);
                case "--batch" -> batches = value(args, ++i);
                case "--threads" -> threads = value(args, ++i);
                case "--quick" -> quick = true;
                case "--help", "-h" -> {
                    System.out.println("""
                            Usage: bin/seqscore bench [--bundle DIR] [--batch 1,64] [--threads 1] [--quick]

                            JMH (1 fork) over the bundle's golden windows: FeatureEncoder and OnnxScorer cost per
                            event. --quick: 1 s iterations, 2 warm-up + 3 measured (default 2 s, 3 + 5).""");
                    return;
                }
                default -> {
                    System.err.println("unknown option " + args[i] + " (try --help)");
                    System.exit(2);
                }
            }
        }
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

    private static String value(String[] args, int i) {
        if (i >= args.length) {
            System.err.println("option " + args[i - 1] + " needs a value");
            System.exit(2);
        }
        return args[i];
    }
}

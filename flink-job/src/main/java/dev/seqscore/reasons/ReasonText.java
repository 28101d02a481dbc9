package dev.seqscore.reasons;

import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.Scoring;
import java.io.Serializable;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Fills a reason group's text with the event's readable values, recovered from the standardised profile and lifetime
 * rows by inverting each feature's transform (docs/feature-contract.md): counts, durations, the window length, the
 * local clock time, yes/no flags.
 */
final class ReasonText implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final Pattern PLACEHOLDER = Pattern.compile("\\{([a-z_0-9]+)}");

    private final List<String> names;
    private final double[] mean;
    private final double[] std;
    private final int maxEvents;
    private final double horizonSeconds;
    private final int hourSin;
    private final int hourCos;
    private final List<String> lifeNames;
    private final double[] lifeMean;
    private final double[] lifeStd;
    private final double resetGapSeconds;

    ReasonText(ModelSpec spec) {
        this(spec, spec.served(Scoring.WINDOWED));
    }

    ReasonText(ModelSpec spec, ModelSpec.Served served) {
        this.names = spec.profileFeatureNames();
        this.mean = spec.profileMeans();
        this.std = spec.profileStds();
        this.maxEvents = spec.maxEvents();
        this.horizonSeconds = spec.horizonMs() / 1000.0;
        this.hourSin = names.indexOf("event_hour_sin");
        this.hourCos = names.indexOf("event_hour_cos");
        this.lifeNames = served.lifetimeFeatures().stream().map(ModelSpec.FeatureSpec::name).toList();
        this.lifeMean = served.lifetimeFeatures().stream().mapToDouble(ModelSpec.FeatureSpec::mean).toArray();
        this.lifeStd = served.lifetimeFeatures().stream().mapToDouble(ModelSpec.FeatureSpec::std).toArray();
        this.resetGapSeconds = served.resetGapMs() / 1000.0;
    }

    /** {@code template} with every placeholder replaced, for the standardised profile {@code profile[offset..]}. */
    String fill(String template, float[] profile, int offset, String eventType) {
        return fill(template, profile, offset, new float[0], 0, eventType);
    }

    /** As {@link #fill(String, float[], int, String)}, with the standardised lifetime row at {@code lifeOffset}. */
    String fill(String template, float[] profile, int offset, float[] lifetime, int lifeOffset, String eventType) {
        Matcher m = PLACEHOLDER.matcher(template);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String name = m.group(1);
            int life = lifeNames.indexOf(name);
            String value = name.equals("event_type") ? eventType
                    : life >= 0 ? readableLifetime(life, lifetime, lifeOffset)
                    : readable(names.indexOf(name), profile, offset);
            m.appendReplacement(out, Matcher.quoteReplacement(value));
        }
        m.appendTail(out);
        return out.toString();
    }

    /** A lifetime feature's value: counts, days, durations capped at the reset gap, a yes/no flag. */
    String readableLifetime(int f, float[] lifetime, int offset) {
        String name = lifeNames.get(f);
        double raw = lifetime[offset + f] * lifeStd[f] + lifeMean[f];
        if (name.equals("life_since_prev_event") || name.equals("life_since_prev_buy")) {
            // Capped at the reset gap, which also stands for "none since the record began".
            double seconds = Math.expm1(raw);
            return seconds >= resetGapSeconds - 0.5 ? longDuration(resetGapSeconds) + " or more"
                    : longDuration(seconds);
        }
        if (name.equals("life_days_since_first")) {
            return longDuration(Math.expm1(raw) * 86400.0);
        }
        if (name.equals("life_has_prev_buy")) {
            return raw >= 0.5 ? "yes" : "no";
        }
        return Long.toString(Math.round(Math.expm1(raw))); // life_count_* and life_active_days: log1p of a count
    }

    /** {@link #duration}, in days from two days on: lifetimes span weeks. */
    static String longDuration(double seconds) {
        if (seconds < 2 * 86400.0 - 0.5) {
            return duration(seconds);
        }
        return Math.round(seconds / 86400.0) + " days";
    }

    private double raw(int f, float[] profile, int offset) {
        return profile[offset + f] * std[f] + mean[f];
    }

    String readable(int f, float[] profile, int offset) {
        String name = names.get(f);
        double raw = raw(f, profile, offset);
        if (name.equals("since_prev_event") || name.equals("since_prev_buy")) {
            // Capped at the horizon, which also stands for "none in the window".
            double seconds = Math.expm1(raw);
            return seconds >= horizonSeconds - 0.5 ? duration(horizonSeconds) + " or more" : duration(seconds);
        }
        if (name.equals("window_length")) {
            return Long.toString(Math.round(raw * maxEvents));
        }
        if (name.equals("has_prev_buy") || name.startsWith(ModelSpec.IS_PREFIX)) {
            return raw >= 0.5 ? "yes" : "no";
        }
        if (name.equals("event_hour_sin") || name.equals("event_hour_cos")) {
            return clock(profile, offset);
        }
        return Long.toString(Math.round(Math.expm1(raw))); // every other feature is log1p of a count
    }

    private String clock(float[] profile, int offset) {
        if (hourSin < 0 || hourCos < 0) {
            return "?";
        }
        double angle = Math.atan2(raw(hourSin, profile, offset), raw(hourCos, profile, offset));
        long minutes = Math.round((angle < 0 ? angle + 2 * Math.PI : angle) / (2 * Math.PI) * 1440) % 1440;
        return String.format(Locale.ROOT, "%02d:%02d", minutes / 60, minutes % 60);
    }

    static String duration(double seconds) {
        long s = Math.max(0, Math.round(seconds));
        if (s < 60) return s + " s";
        long min = Math.round(s / 60.0);
        if (min < 60) return min + " min";
        long h = min / 60;
        return min % 60 == 0 ? h + " h" : h + " h " + (min % 60) + " min";
    }
}

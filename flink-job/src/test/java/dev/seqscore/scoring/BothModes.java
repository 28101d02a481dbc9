package dev.seqscore.scoring;

import dev.seqscore.features.Scoring;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A test run once per {@link dev.seqscore.model.Scoring} mode; the test calls
 * {@link ScoringFixture#assumeServes} first, so that incremental runs skip on a bundle without a streaming model.
 */
@Target(ElementType.METHOD)
@Retention(RetentionPolicy.RUNTIME)
@ParameterizedTest(name = "{0}")
@EnumSource(Scoring.class)
public @interface BothModes {}

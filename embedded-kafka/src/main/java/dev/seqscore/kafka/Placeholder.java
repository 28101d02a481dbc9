package dev.seqscore.kafka; /** placeholder. */ final class Placeholder {}

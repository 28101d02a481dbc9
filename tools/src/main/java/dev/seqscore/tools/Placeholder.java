package dev.seqscore.tools; /** placeholder. */ final class Placeholder {}

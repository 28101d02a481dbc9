package dev.seqscore.events;

/**
 * A row that the cleaning rules drop, with its {@link DropKind} and a message that names the offending value. Thrown
 * by the readers' cell rules and caught once per row; no stack trace, since it is expected and frequent.
 */
public final class Rejection extends Exception {
    private static final long serialVersionUID = 1L;
    private final DropKind kind;

    public Rejection(DropKind kind, String message) {
        super(message, null, false, false);
        this.kind = kind;
    }

    public DropKind kind() {
        return kind;
    }
}

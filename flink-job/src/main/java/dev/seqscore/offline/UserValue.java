package dev.seqscore.offline;

/** One user's {@code UserState} value as the bootstrap computed it, with the time of its cleanup timer. A POJO. */
public class UserValue {
    public String user;
    public byte[] value;
    /** Event time of the user's one cleanup timer ({@code UserStep.NONE}: none). */
    public long timer;

    public UserValue() {}

    public UserValue(String user, byte[] value, long timer) {
        this.user = user;
        this.value = value;
        this.timer = timer;
    }
}

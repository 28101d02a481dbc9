package dev.seqscore.offline.files;

import dev.seqscore.events.ClickRules;
import dev.seqscore.events.DropKind;
import dev.seqscore.events.Rejection;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The cell rules shared by the CSV readers (docs/feature-contract.md, "Cleaning"): RFC 4180 quoting within one line,
 * the column-count check, header lookup by name, and the integer timestamp and price cells. model-export's
 * {@code data.py} implements the same rules, so both sides keep and drop the same rows.
 */
public final class CsvCells {
    private static final Pattern DIGITS = Pattern.compile("[0-9]+");
    private static final Pattern DECIMAL = Pattern.compile("[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?");

    private CsvCells() {}

    /**
     * Splits one CSV line: a quote opens a quoted cell only at the cell's start; a quoted cell may hold commas and
     * doubled quotes; cells never span lines, which none of the supported sources need.
     *
     * @throws Rejection ({@link DropKind#BAD_QUOTING}) on an unterminated quote
     */
    public static List<String> split(String line) throws Rejection {
        List<String> cells = new ArrayList<>();
        StringBuilder cell = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < line.length(); i++) {
            char ch = line.charAt(i);
            if (quoted) {
                if (ch == '"') {
                    if (i + 1 < line.length() && line.charAt(i + 1) == '"') {
                        cell.append('"');
                        i++;
                    } else {
                        quoted = false;
                    }
                } else {
                    cell.append(ch);
                }
            } else if (ch == ',') {
                cells.add(cell.toString());
                cell.setLength(0);
            } else if (ch == '"' && cell.length() == 0) {
                quoted = true;
            } else {
                cell.append(ch);
            }
        }
        if (quoted) {
            throw new Rejection(DropKind.BAD_QUOTING, "unterminated quote");
        }
        cells.add(cell.toString());
        return cells;
    }

    /** The line's cells, each trimmed, or why it is not a row of {@code width} cells. */
    public static List<String> cells(String line, int width) throws Rejection {
        List<String> c = split(line);
        if (c.size() != width) {
            throw new Rejection(DropKind.WRONG_COLUMN_COUNT, "wrong column count: " + c.size() + ", expected " + width);
        }
        c.replaceAll(String::trim);
        return c;
    }

    /**
     * A header line's column positions by lower-cased, trimmed name (the first of repeated names wins); the key
     * {@code ""} holds the header's width, for the column-count check.
     *
     * @throws IOException naming the source when the header lacks a required column (then no line could be read)
     */
    public static Map<String, Integer> header(String line, List<String> required, String sourceName)
            throws IOException {
        List<String> names;
        try {
            names = split(line);
        } catch (Rejection e) {
            throw new IOException(sourceName + ": unreadable header: " + e.getMessage());
        }
        Map<String, Integer> index = new HashMap<>();
        for (int i = 0; i < names.size(); i++) {
            index.putIfAbsent(names.get(i).trim().toLowerCase(Locale.ROOT), i);
        }
        List<String> missing = required.stream().filter(c -> !index.containsKey(c)).toList();
        if (!missing.isEmpty()) {
            throw new IOException(sourceName + ": header lacks column(s) " + missing + "; found " + names
                    + "; expected at least " + required);
        }
        index.put("", names.size());
        return index;
    }

    /**
     * An integer time cell: a non-empty run of ASCII digits that fits a signed 64-bit integer. Signs, spaces inside,
     * fractions and exponents are all rejected.
     */
    public static long epoch(String raw) throws Rejection {
        if (raw.isEmpty()) {
            throw new Rejection(DropKind.BAD_TIMESTAMP, "empty timestamp");
        }
        if (!DIGITS.matcher(raw).matches()) {
            throw new Rejection(DropKind.BAD_TIMESTAMP, "non-numeric timestamp '" + raw + "'");
        }
        try {
            return Long.parseLong(raw);
        } catch (NumberFormatException e) {
            throw new Rejection(DropKind.BAD_TIMESTAMP, "timestamp out of range '" + raw + "'");
        }
    }

    /**
     * A price cell: empty is null; otherwise a decimal number (optional sign, fraction and exponent; no hex, no
     * {@code NaN}/{@code Infinity} words), finite and non-negative.
     */
    public static Double price(String raw) throws Rejection {
        if (raw.isEmpty()) {
            return null;
        }
        if (!DECIMAL.matcher(raw).matches()) {
            throw new Rejection(DropKind.BAD_PRICE, "non-numeric price '" + raw + "'");
        }
        double p = Double.parseDouble(raw);
        if (!ClickRules.validPrice(p)) {
            throw new Rejection(DropKind.BAD_PRICE, "invalid price '" + raw + "'");
        }
        return p;
    }

    public static String emptyToNull(String s) {
        return s.isEmpty() ? null : s;
    }
}

package org.flexidepth.examples.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The paper's task contrast, as few-shot text for a base model: copying a passage versus
 * continuing it (XSum articles and Gutenberg paragraphs), and repeating a list of numbers versus
 * summing it. Each prompt ends where the model's answer starts; {@code expected} is the reference
 * answer, compared with what the model generates and also read by the model (teacher forcing),
 * so that layer usage on the right answer is measured even where a small model cannot produce it.
 */
public final class TaskPrompts {
    /** {@code checkable}: the answer is unique (copy, repeat, sum), so exact matches are counted. */
    public record Task(String name, String description, boolean checkable, List<Prompt> prompts) {
    }

    /** {@code expected}: the reference answer (for continuation, the passage's true next words). */
    public record Prompt(String text, String expected) {
    }

    private TaskPrompts() {
    }

    /** The first {@code words} words of a passage. */
    static String head(String text, int words) {
        return words(text, 0, words);
    }

    /** Words [from, to) of a passage. */
    static String words(String text, int from, int to) {
        String[] w = text.strip().split("\\s+");
        return String.join(" ", java.util.Arrays.copyOfRange(w, Math.min(from, w.length), Math.min(to, w.length)));
    }

    /** "Copy" prompts: two solved examples, then the passage to copy. */
    public static Task copy(String name, String source, List<String> passages, int words) {
        List<Prompt> prompts = new ArrayList<>();
        for (int i = 2; i < passages.size(); i++) {
            String a = head(passages.get(i - 2), words), b = head(passages.get(i - 1), words), c = head(passages.get(i), words);
            String text = "Text: " + a + "\nCopy: " + a + "\n\nText: " + b + "\nCopy: " + b + "\n\nText: " + c + "\nCopy:";
            prompts.add(new Prompt(text, " " + c));
        }
        return new Task(name, "copy a " + source + " passage of " + words + " words after two solved examples", true, prompts);
    }

    /** "Continue" prompts: the opening of a passage, continued by the model. */
    public static Task continuation(String name, String source, List<String> passages, int words) {
        List<Prompt> prompts = new ArrayList<>();
        for (int i = 2; i < passages.size(); i++) {
            prompts.add(new Prompt(head(passages.get(i), words), " " + words(passages.get(i), words, words + 16)));
        }
        return new Task(name, "continue the opening " + words + " words of a " + source + " passage", false, prompts);
    }

    /** "Repeat" and "sum" prompts on the same random lists of one-digit numbers. */
    public static List<Task> numbers(int count, int length, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<Prompt> repeat = new ArrayList<>(), sum = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int[][] lists = new int[3][length];
            for (int[] l : lists) {
                for (int j = 0; j < length; j++) {
                    l[j] = 1 + r.nextInt(9);
                }
            }
            StringBuilder rep = new StringBuilder(), sm = new StringBuilder();
            for (int k = 0; k < 3; k++) {
                String nums = join(lists[k]);
                int total = java.util.Arrays.stream(lists[k]).sum();
                boolean last = k == 2;
                rep.append("Numbers: ").append(nums).append("\nRepeat:").append(last ? "" : " " + nums + "\n\n");
                sm.append("Numbers: ").append(nums).append("\nSum:").append(last ? "" : " " + total + "\n\n");
            }
            repeat.add(new Prompt(rep.toString(), " " + join(lists[2])));
            sum.add(new Prompt(sm.toString(), " " + java.util.Arrays.stream(lists[2]).sum()));
        }
        return List.of(new Task("repeat_numbers", "repeat a list of " + length + " numbers after two solved examples", true, repeat),
                new Task("sum_numbers", "sum a list of " + length + " numbers after two solved examples", true, sum));
    }

    private static String join(int[] l) {
        StringBuilder b = new StringBuilder();
        for (int x : l) {
            b.append(b.isEmpty() ? "" : " ").append(x);
        }
        return b.toString();
    }
}

package org.flexidepth.llama;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StopStringMatcherTest {
    @Test
    void stopStringSplitAcrossPiecesIsNeverReleased() {
        StopStringMatcher m = new StopStringMatcher(List.of("User:"));
        assertEquals("Hello ", m.append("Hello U"));
        assertEquals("", m.append("se"));
        assertEquals("", m.append("r: more"));
        assertTrue(m.stopped());
    }

    @Test
    void heldTextIsReleasedWhenItCannotBecomeAStop() {
        StopStringMatcher m = new StopStringMatcher(List.of("User:"));
        assertEquals("a", m.append("aUs"));
        assertEquals("Usx", m.append("x"));
        assertFalse(m.stopped());
        assertEquals("", m.flush());
    }

    @Test
    void earliestOfSeveralStopsWins() {
        StopStringMatcher m = new StopStringMatcher(List.of("END", "."));
        assertEquals("one", m.append("one. END"));
        assertTrue(m.stopped());
    }

    @Test
    void withoutStopStringsEverythingPassesThrough() {
        StopStringMatcher m = new StopStringMatcher(List.of());
        assertEquals("abc", m.append("abc"));
        assertEquals("", m.flush());
    }
}

package org.flexidepth.bindgen;

/** A C type as the bindings see it: what Java carries it as, and which layout describes it. */
sealed interface CType {
    /** The Java type of a value of this C type in a downcall, accessor or upcall. */
    String carrier();

    /** A Java expression for the memory layout, relative to the generated package. */
    String layout(String headerClass);

    /** The static type of {@link #layout}, as jextract declares it. */
    String layoutType();

    record Void() implements CType {
        public String carrier() { return "void"; }
        public String layout(String h) { throw new IllegalStateException("void has no layout"); }
        public String layoutType() { throw new IllegalStateException("void has no layout"); }
    }

    /** A scalar with one of the header class's C_* layouts. */
    record Scalar(String carrier, String constant, String layoutType) implements CType {
        public String layout(String h) { return h + "." + constant; }
    }

    /** Any data or function pointer: an address. */
    record Pointer() implements CType {
        public String carrier() { return "MemorySegment"; }
        public String layout(String h) { return h + ".C_POINTER"; }
        public String layoutType() { return "AddressLayout"; }
    }

    /** A struct or union passed or stored by value. */
    record Record(String name) implements CType {
        public String carrier() { return "MemorySegment"; }
        public String layout(String h) { return name + ".layout()"; }
        public String layoutType() { return "GroupLayout"; }
    }

    /** A C type Java cannot carry (long double, bit-fields...): an error only if a bound declaration uses it. */
    record Unsupported(String spelling) implements CType {
        public String carrier() { throw new IllegalStateException("unsupported C type " + spelling); }
        public String layout(String h) { throw new IllegalStateException("unsupported C type " + spelling); }
        public String layoutType() { throw new IllegalStateException("unsupported C type " + spelling); }
    }

    /** A fixed-size array inside a struct. */
    record Array(CType element, long length) implements CType {
        public String carrier() { return "MemorySegment"; }
        public String layout(String h) { return "MemoryLayout.sequenceLayout(" + length + ", " + element.layout(h) + ")"; }
        public String layoutType() { return "SequenceLayout"; }
    }
}

package org.flexidepth.bindgen;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * The declarations of a parsed header that the bindings can expose, keyed by name in source order.
 * Built from libclang cursors; holds no libclang state afterwards.
 */
final class HeaderModel {
    record Param(String name, CType type) { }
    record Function(String name, CType result, List<Param> params) { }
    record Field(String name, CType type, long offset) { }
    record Struct(String name, boolean union, long size, List<Field> fields) { }
    /** A typedef of a function pointer: becomes an interface with an upcall factory. */
    record Callback(String name, CType result, List<Param> params) { }
    /** An enum constant or an integer macro. */
    record Constant(String name, String javaType, long value) { }

    final Map<String, Function> functions = new LinkedHashMap<>();
    final Map<String, Struct> structs = new LinkedHashMap<>();
    final Map<String, Callback> callbacks = new LinkedHashMap<>();
    final Map<String, CType> typedefs = new LinkedHashMap<>();
    final Map<String, Constant> constants = new LinkedHashMap<>();

    private final Clang clang;

    private HeaderModel(Clang clang) {
        this.clang = clang;
    }

    static HeaderModel read(Clang clang, MemorySegment unit) {
        HeaderModel m = new HeaderModel(clang);
        for (MemorySegment c : clang.children(unit)) {
            m.declare(c);
        }
        return m;
    }

    private void declare(MemorySegment c) {
        String name = clang.spelling(c);
        switch (clang.kind(c)) {
            case Clang.CURSOR_FUNCTION_DECL -> {
                MemorySegment ft = clang.type(c);
                if (clang.isVariadic(ft)) {
                    return; // jextract binds these through an invoker; the API needs none of them
                }
                List<Param> params = new ArrayList<>();
                List<MemorySegment> kids = clang.children(c).stream().filter(k -> clang.kind(k) == Clang.CURSOR_PARM_DECL).toList();
                for (int i = 0; i < clang.argCount(ft); i++) {
                    String pn = i < kids.size() ? clang.spelling(kids.get(i)) : "";
                    params.add(new Param(javaName(pn.isEmpty() ? "x" + i : pn), type(clang.argType(ft, i))));
                }
                functions.putIfAbsent(name, new Function(name, type(clang.resultTypeOf(ft)), params));
            }
            case Clang.CURSOR_STRUCT_DECL, Clang.CURSOR_UNION_DECL -> {
                List<MemorySegment> kids = clang.children(c);
                List<Field> fields = new ArrayList<>();
                boolean complete = clang.sizeOf(clang.type(c)) > 0;
                for (MemorySegment k : kids) {
                    if (clang.kind(k) == Clang.CURSOR_FIELD_DECL) {
                        CType t = clang.isBitField(k) ? new CType.Unsupported("bit-field " + clang.spelling(k)) : type(clang.type(k));
                        fields.add(new Field(clang.spelling(k), t, clang.fieldOffsetBits(k) / 8));
                    } else {
                        declare(k); // nested declarations are file-scope in C
                    }
                }
                if (complete && !name.isEmpty()) {
                    structs.putIfAbsent(name, new Struct(name, clang.kind(c) == Clang.CURSOR_UNION_DECL, clang.sizeOf(clang.type(c)), fields));
                }
            }
            case Clang.CURSOR_ENUM_DECL -> {
                String javaType = clang.sizeOf(clang.type(c)) == 8 ? "long" : "int";
                for (MemorySegment k : clang.children(c)) {
                    if (clang.kind(k) == Clang.CURSOR_ENUM_CONSTANT_DECL) {
                        String n = clang.spelling(k);
                        constants.putIfAbsent(n, new Constant(n, javaType, clang.enumValue(k)));
                    }
                }
            }
            case Clang.CURSOR_TYPEDEF_DECL -> {
                MemorySegment under = clang.typedefUnderlying(c);
                MemorySegment canon = clang.canonical(under);
                if (clang.typeKind(canon) == Clang.TYPE_POINTER && isFunction(clang.canonical(clang.pointee(canon)))) {
                    MemorySegment ft = clang.canonical(clang.pointee(canon));
                    List<MemorySegment> kids = clang.children(c).stream().filter(k -> clang.kind(k) == Clang.CURSOR_PARM_DECL).toList();
                    List<Param> params = new ArrayList<>();
                    for (int i = 0; i < clang.argCount(ft); i++) {
                        String pn = i < kids.size() ? clang.spelling(kids.get(i)) : "";
                        params.add(new Param(javaName(pn.isEmpty() ? "x" + i : pn), type(clang.argType(ft, i))));
                    }
                    callbacks.putIfAbsent(name, new Callback(name, type(clang.resultTypeOf(ft)), params));
                } else if (clang.typeKind(canon) != Clang.TYPE_RECORD && clang.typeKind(canon) != Clang.TYPE_VOID
                        && !isFunction(canon)) {
                    typedefs.putIfAbsent(name, type(under));
                }
                for (MemorySegment k : clang.children(c)) {
                    int kk = clang.kind(k);
                    if (kk == Clang.CURSOR_STRUCT_DECL || kk == Clang.CURSOR_UNION_DECL || kk == Clang.CURSOR_ENUM_DECL) {
                        declare(k);
                    }
                }
            }
            case Clang.CURSOR_MACRO_DEFINITION -> macro(c, name).ifPresent(k -> constants.putIfAbsent(name, k));
            default -> { }
        }
    }

    /** Object-like macros whose body is one integer literal, optionally negated. */
    private Optional<Constant> macro(MemorySegment c, String name) {
        List<String[]> tokens = clang.tokens(c);
        if (tokens.size() < 2 || tokens.size() > 3) {
            return Optional.empty();
        }
        boolean negative = tokens.size() == 3;
        if (negative && !tokens.get(1)[1].equals("-")) {
            return Optional.empty();
        }
        String[] lit = tokens.get(tokens.size() - 1);
        if (Integer.parseInt(lit[0]) != Clang.TOKEN_LITERAL) {
            return Optional.empty();
        }
        String text = lit[1].toLowerCase().replaceAll("[ul]+$", "");
        long value;
        try {
            value = text.startsWith("0x") ? Long.parseUnsignedLong(text.substring(2), 16) : Long.parseLong(text);
        } catch (NumberFormatException e) {
            return Optional.empty(); // floats and strings are not needed
        }
        if (negative) {
            value = -value;
        }
        // As in C, a literal that fits 32 bits (signed or unsigned) is an int.
        boolean fitsInt = value >= Integer.MIN_VALUE && value <= 0xFFFFFFFFL;
        return Optional.of(new Constant(name, fitsInt ? "int" : "long", fitsInt ? (int) value : value));
    }

    private boolean isFunction(MemorySegment canon) {
        int k = clang.typeKind(canon);
        return k == Clang.TYPE_FUNCTION_PROTO || k == Clang.TYPE_FUNCTION_NO_PROTO;
    }

    private CType type(MemorySegment t) {
        MemorySegment canon = clang.canonical(t);
        return switch (clang.typeKind(canon)) {
            case Clang.TYPE_VOID -> new CType.Void();
            case Clang.TYPE_BOOL -> new CType.Scalar("boolean", "C_BOOL", "OfBoolean");
            case Clang.TYPE_CHAR_S, Clang.TYPE_SCHAR, Clang.TYPE_CHAR_U, Clang.TYPE_UCHAR -> new CType.Scalar("byte", "C_CHAR", "OfByte");
            case Clang.TYPE_SHORT, Clang.TYPE_USHORT -> new CType.Scalar("short", "C_SHORT", "OfShort");
            case Clang.TYPE_INT, Clang.TYPE_UINT -> new CType.Scalar("int", "C_INT", "OfInt");
            case Clang.TYPE_LONG, Clang.TYPE_ULONG -> new CType.Scalar("long", "C_LONG", "OfLong");
            case Clang.TYPE_LONGLONG, Clang.TYPE_ULONGLONG -> new CType.Scalar("long", "C_LONG_LONG", "OfLong");
            case Clang.TYPE_FLOAT -> new CType.Scalar("float", "C_FLOAT", "OfFloat");
            case Clang.TYPE_DOUBLE -> new CType.Scalar("double", "C_DOUBLE", "OfDouble");
            case Clang.TYPE_POINTER, Clang.TYPE_INCOMPLETE_ARRAY -> new CType.Pointer();
            case Clang.TYPE_ENUM -> clang.sizeOf(canon) == 8 ? new CType.Scalar("long", "C_LONG", "OfLong")
                    : new CType.Scalar("int", "C_INT", "OfInt");
            case Clang.TYPE_RECORD -> new CType.Record(clang.spelling(clang.declaration(canon)));
            case Clang.TYPE_CONSTANT_ARRAY -> new CType.Array(type(clang.elementType(canon)), clang.arraySize(canon));
            default -> new CType.Unsupported(clang.typeSpelling(t));
        };
    }

    /**
     * Keeps only what the options include and checks that everything they need is included too,
     * so that jextract, given the same argfile, produces the same API.
     */
    HeaderModel select(JextractOptions o) {
        List<String> missing = new ArrayList<>();
        check("function", o.functions(), functions.keySet(), missing);
        check("struct", o.structs(), structs.keySet(), missing);
        check("constant", o.constants(), constants.keySet(), missing);
        Set<String> typedefNames = new TreeSet<>(typedefs.keySet());
        typedefNames.addAll(callbacks.keySet());
        check("typedef", o.typedefs(), typedefNames, missing);
        functions.keySet().retainAll(o.functions());
        structs.keySet().retainAll(o.structs());
        constants.keySet().retainAll(o.constants());
        typedefs.keySet().retainAll(o.typedefs());
        callbacks.keySet().retainAll(o.typedefs());
        List<CType> used = new ArrayList<>();
        functions.values().forEach(f -> { used.add(f.result()); f.params().forEach(p -> used.add(p.type())); });
        structs.values().forEach(s -> s.fields().forEach(f -> used.add(f.type())));
        callbacks.values().forEach(f -> { used.add(f.result()); f.params().forEach(p -> used.add(p.type())); });
        for (CType t : used) {
            while (t instanceof CType.Array a) {
                t = a.element();
            }
            if (t instanceof CType.Unsupported u) {
                missing.add("unsupported C type " + u.spelling() + " in a bound declaration");
            }
            if (t instanceof CType.Record r && !structs.containsKey(r.name())) {
                missing.add("--include-struct " + r.name() + " (used by value)");
            }
        }
        if (!missing.isEmpty()) {
            throw new IllegalStateException("cannot generate bindings:\n  " + String.join("\n  ", new TreeSet<>(missing)));
        }
        return this;
    }

    private static void check(String what, Set<String> wanted, Set<String> found, List<String> missing) {
        for (String w : wanted) {
            if (!found.contains(w)) {
                missing.add(what + " " + w + " is not declared in the header");
            }
        }
    }

    private static final Set<String> JAVA_KEYWORDS = Set.of("abstract", "assert", "boolean", "break", "byte", "case",
            "catch", "char", "class", "const", "continue", "default", "do", "double", "else", "enum", "extends", "final",
            "finally", "float", "for", "goto", "if", "implements", "import", "instanceof", "int", "interface", "long",
            "native", "new", "package", "private", "protected", "public", "return", "short", "static", "strictfp",
            "super", "switch", "synchronized", "this", "throw", "throws", "transient", "try", "void", "volatile", "while");

    static String javaName(String c) {
        return JAVA_KEYWORDS.contains(c) ? c + "_" : c;
    }
}

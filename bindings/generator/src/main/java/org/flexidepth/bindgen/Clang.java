package org.flexidepth.bindgen;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The slice of libclang's C API that the generator needs, bound by hand through FFM. This is the
 * generator's bootstrap: it cannot generate its own bindings before it exists.
 * Cursors and types are libclang's by-value structs, kept here as small heap segments.
 */
final class Clang implements AutoCloseable {
    static final MemoryLayout CURSOR = MemoryLayout.structLayout(JAVA_INT, JAVA_INT, MemoryLayout.sequenceLayout(3, ADDRESS));
    static final MemoryLayout TYPE = MemoryLayout.structLayout(JAVA_INT, MemoryLayout.paddingLayout(4), MemoryLayout.sequenceLayout(2, ADDRESS));
    static final MemoryLayout STRING = MemoryLayout.structLayout(ADDRESS, JAVA_INT, MemoryLayout.paddingLayout(4));
    static final MemoryLayout LOCATION = MemoryLayout.structLayout(MemoryLayout.sequenceLayout(2, ADDRESS), JAVA_INT, MemoryLayout.paddingLayout(4));
    static final MemoryLayout RANGE = MemoryLayout.structLayout(MemoryLayout.sequenceLayout(2, ADDRESS), JAVA_INT, JAVA_INT);
    static final MemoryLayout TOKEN = MemoryLayout.structLayout(MemoryLayout.sequenceLayout(4, JAVA_INT), ADDRESS);

    // CXCursorKind values used by the generator (clang-c/Index.h).
    static final int CURSOR_STRUCT_DECL = 2, CURSOR_UNION_DECL = 3, CURSOR_ENUM_DECL = 5, CURSOR_FIELD_DECL = 6,
            CURSOR_ENUM_CONSTANT_DECL = 7, CURSOR_FUNCTION_DECL = 8, CURSOR_VAR_DECL = 9, CURSOR_PARM_DECL = 10,
            CURSOR_TYPEDEF_DECL = 20, CURSOR_MACRO_DEFINITION = 501;

    // CXTypeKind values.
    static final int TYPE_VOID = 2, TYPE_BOOL = 3, TYPE_CHAR_U = 4, TYPE_UCHAR = 5, TYPE_USHORT = 8, TYPE_UINT = 9,
            TYPE_ULONG = 10, TYPE_ULONGLONG = 11, TYPE_CHAR_S = 13, TYPE_SCHAR = 14, TYPE_SHORT = 16, TYPE_INT = 17,
            TYPE_LONG = 18, TYPE_LONGLONG = 19, TYPE_FLOAT = 21, TYPE_DOUBLE = 22, TYPE_POINTER = 101,
            TYPE_RECORD = 105, TYPE_ENUM = 106, TYPE_TYPEDEF = 107, TYPE_FUNCTION_NO_PROTO = 110,
            TYPE_FUNCTION_PROTO = 111, TYPE_CONSTANT_ARRAY = 112, TYPE_INCOMPLETE_ARRAY = 114, TYPE_ELABORATED = 119;

    static final int TOKEN_PUNCTUATION = 0, TOKEN_LITERAL = 3;

    private static final int PARSE_DETAILED_PREPROCESSING_RECORD = 0x01, PARSE_SKIP_FUNCTION_BODIES = 0x40;
    private static final int VISIT_RECURSE = 2, VISIT_CONTINUE = 1;

    private static final Linker LINKER = Linker.nativeLinker();
    private static SymbolLookup loaded;

    // libclang is loaded once per JVM: LLVM's global state does not survive being unloaded and reloaded.
    private static synchronized SymbolLookup library(Path libclang) {
        if (loaded == null) {
            loaded = SymbolLookup.libraryLookup(libclang, Arena.global());
        }
        return loaded;
    }

    private final SymbolLookup lib;
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment index;
    private MemorySegment unit = MemorySegment.NULL;

    Clang(Path libclang) {
        if (!Files.exists(libclang)) {
            throw new IllegalStateException("libclang not found at " + libclang + " (install Debian's libclang-14-dev or set -Dbindgen.libclang)");
        }
        lib = library(libclang);
        index = (MemorySegment) call("clang_createIndex", FunctionDescriptor.of(ADDRESS, JAVA_INT, JAVA_INT), 0, 0);
        // libclang's crash recovery installs its own SIGSEGV handlers, which break the JVM's
        // (the JVM uses SIGSEGV internally); turn it off right after the index installs them.
        call("clang_toggleCrashRecovery", FunctionDescriptor.ofVoid(JAVA_INT), 0);
    }

    private final java.util.Map<String, MethodHandle> handles = new java.util.HashMap<>();

    private MethodHandle handle(String name, FunctionDescriptor desc) {
        return handles.computeIfAbsent(name, n -> LINKER.downcallHandle(
                lib.find(n).orElseThrow(() -> new IllegalStateException("libclang lacks " + n)), desc));
    }

    private Object call(String name, FunctionDescriptor desc, Object... args) {
        try {
            return handle(name, desc).invokeWithArguments(args);
        } catch (Throwable t) {
            throw new IllegalStateException("libclang call " + name + " failed", t);
        }
    }

    private Object callStruct(String name, FunctionDescriptor desc, Object... args) {
        Object[] all = new Object[args.length + 1];
        all[0] = (SegmentAllocator) arena;
        System.arraycopy(args, 0, all, 1, args.length);
        return call(name, desc, all);
    }

    /** Parses `header` with the given compiler arguments and returns the translation unit's cursor. */
    MemorySegment parse(Path header, List<String> args) {
        MemorySegment argv = arena.allocate(ADDRESS, args.size());
        for (int i = 0; i < args.size(); i++) {
            argv.setAtIndex(ADDRESS, i, arena.allocateFrom(args.get(i)));
        }
        unit = (MemorySegment) call("clang_parseTranslationUnit",
                FunctionDescriptor.of(ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
                index, arena.allocateFrom(header.toString()), argv, args.size(), MemorySegment.NULL, 0,
                PARSE_DETAILED_PREPROCESSING_RECORD | PARSE_SKIP_FUNCTION_BODIES);
        if (unit.equals(MemorySegment.NULL)) {
            throw new IllegalStateException("libclang could not parse " + header);
        }
        List<String> errors = new ArrayList<>();
        int n = (int) call("clang_getNumDiagnostics", FunctionDescriptor.of(JAVA_INT, ADDRESS), unit);
        for (int i = 0; i < n; i++) {
            MemorySegment d = (MemorySegment) call("clang_getDiagnostic", FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_INT), unit, i);
            int severity = (int) call("clang_getDiagnosticSeverity", FunctionDescriptor.of(JAVA_INT, ADDRESS), d);
            if (severity >= 3) {
                errors.add(string((MemorySegment) callStruct("clang_formatDiagnostic", FunctionDescriptor.of(STRING, ADDRESS, JAVA_INT), d, 0)));
            }
        }
        if (!errors.isEmpty()) {
            throw new IllegalStateException("errors parsing " + header + ":\n" + String.join("\n", errors));
        }
        return (MemorySegment) callStruct("clang_getTranslationUnitCursor", FunctionDescriptor.of(CURSOR, ADDRESS), unit);
    }

    /** The direct children of a cursor, in source order. */
    List<MemorySegment> children(MemorySegment cursor) {
        List<MemorySegment> out = new ArrayList<>();
        Consumer<MemorySegment> sink = c -> out.add(arena.allocate(CURSOR).copyFrom(c));
        try {
            MethodHandle target = MethodHandles.lookup().findStatic(Clang.class, "visit",
                    MethodType.methodType(int.class, Consumer.class, MemorySegment.class, MemorySegment.class, MemorySegment.class));
            FunctionDescriptor visitor = FunctionDescriptor.of(JAVA_INT, CURSOR, CURSOR, ADDRESS);
            try (Arena upcall = Arena.ofConfined()) {
                MemorySegment stub = LINKER.upcallStub(MethodHandles.insertArguments(target, 0, sink), visitor, upcall);
                call("clang_visitChildren", FunctionDescriptor.of(JAVA_INT, CURSOR, ADDRESS, ADDRESS), cursor, stub, MemorySegment.NULL);
            }
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
        return out;
    }

    @SuppressWarnings("unused") // called from native code through the upcall stub
    private static int visit(Consumer<MemorySegment> sink, MemorySegment cursor, MemorySegment parent, MemorySegment data) {
        sink.accept(cursor);
        return VISIT_CONTINUE;
    }

    int kind(MemorySegment cursor) {
        return cursor.get(JAVA_INT, 0);
    }

    String spelling(MemorySegment cursor) {
        return string((MemorySegment) callStruct("clang_getCursorSpelling", FunctionDescriptor.of(STRING, CURSOR), cursor));
    }

    /** The file a cursor is declared in, or "" for built-ins. */
    String file(MemorySegment cursor) {
        MemorySegment loc = (MemorySegment) callStruct("clang_getCursorLocation", FunctionDescriptor.of(LOCATION, CURSOR), cursor);
        MemorySegment filePtr = arena.allocate(ADDRESS);
        call("clang_getExpansionLocation", FunctionDescriptor.ofVoid(LOCATION, ADDRESS, ADDRESS, ADDRESS, ADDRESS),
                loc, filePtr, MemorySegment.NULL, MemorySegment.NULL, MemorySegment.NULL);
        MemorySegment file = filePtr.get(ADDRESS, 0);
        if (file.equals(MemorySegment.NULL)) {
            return "";
        }
        return string((MemorySegment) callStruct("clang_getFileName", FunctionDescriptor.of(STRING, ADDRESS), file));
    }

    MemorySegment type(MemorySegment cursor) {
        return (MemorySegment) callStruct("clang_getCursorType", FunctionDescriptor.of(TYPE, CURSOR), cursor);
    }

    MemorySegment resultType(MemorySegment cursor) {
        return (MemorySegment) callStruct("clang_getCursorResultType", FunctionDescriptor.of(TYPE, CURSOR), cursor);
    }

    MemorySegment typedefUnderlying(MemorySegment cursor) {
        return (MemorySegment) callStruct("clang_getTypedefDeclUnderlyingType", FunctionDescriptor.of(TYPE, CURSOR), cursor);
    }

    long enumValue(MemorySegment cursor) {
        return (long) call("clang_getEnumConstantDeclValue", FunctionDescriptor.of(JAVA_LONG, CURSOR), cursor);
    }

    /** Offset of a field in bits, or a negative error code. */
    long fieldOffsetBits(MemorySegment cursor) {
        return (long) call("clang_Cursor_getOffsetOfField", FunctionDescriptor.of(JAVA_LONG, CURSOR), cursor);
    }

    boolean isBitField(MemorySegment cursor) {
        return (int) call("clang_Cursor_isBitField", FunctionDescriptor.of(JAVA_INT, CURSOR), cursor) != 0;
    }

    boolean isVariadic(MemorySegment type) {
        return (int) call("clang_isFunctionTypeVariadic", FunctionDescriptor.of(JAVA_INT, TYPE), type) != 0;
    }

    int typeKind(MemorySegment type) {
        return type.get(JAVA_INT, 0);
    }

    String typeSpelling(MemorySegment type) {
        return string((MemorySegment) callStruct("clang_getTypeSpelling", FunctionDescriptor.of(STRING, TYPE), type));
    }

    MemorySegment canonical(MemorySegment type) {
        return (MemorySegment) callStruct("clang_getCanonicalType", FunctionDescriptor.of(TYPE, TYPE), type);
    }

    MemorySegment pointee(MemorySegment type) {
        return (MemorySegment) callStruct("clang_getPointeeType", FunctionDescriptor.of(TYPE, TYPE), type);
    }

    MemorySegment elementType(MemorySegment type) {
        return (MemorySegment) callStruct("clang_getArrayElementType", FunctionDescriptor.of(TYPE, TYPE), type);
    }

    long arraySize(MemorySegment type) {
        return (long) call("clang_getArraySize", FunctionDescriptor.of(JAVA_LONG, TYPE), type);
    }

    MemorySegment resultTypeOf(MemorySegment functionType) {
        return (MemorySegment) callStruct("clang_getResultType", FunctionDescriptor.of(TYPE, TYPE), functionType);
    }

    int argCount(MemorySegment functionType) {
        return (int) call("clang_getNumArgTypes", FunctionDescriptor.of(JAVA_INT, TYPE), functionType);
    }

    MemorySegment argType(MemorySegment functionType, int i) {
        return (MemorySegment) callStruct("clang_getArgType", FunctionDescriptor.of(TYPE, TYPE, JAVA_INT), functionType, i);
    }

    MemorySegment declaration(MemorySegment type) {
        return (MemorySegment) callStruct("clang_getTypeDeclaration", FunctionDescriptor.of(CURSOR, TYPE), type);
    }

    long sizeOf(MemorySegment type) {
        return (long) call("clang_Type_getSizeOf", FunctionDescriptor.of(JAVA_LONG, TYPE), type);
    }

    long alignOf(MemorySegment type) {
        return (long) call("clang_Type_getAlignOf", FunctionDescriptor.of(JAVA_LONG, TYPE), type);
    }

    /** The spellings of the tokens of a cursor's extent, with their libclang token kinds. */
    List<String[]> tokens(MemorySegment cursor) {
        MemorySegment range = (MemorySegment) callStruct("clang_getCursorExtent", FunctionDescriptor.of(RANGE, CURSOR), cursor);
        MemorySegment tokensPtr = arena.allocate(ADDRESS);
        MemorySegment count = arena.allocate(JAVA_INT);
        call("clang_tokenize", FunctionDescriptor.ofVoid(ADDRESS, RANGE, ADDRESS, ADDRESS), unit, range, tokensPtr, count);
        int n = count.get(JAVA_INT, 0);
        MemorySegment tokens = tokensPtr.get(ADDRESS, 0).reinterpret(TOKEN.byteSize() * n);
        List<String[]> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            MemorySegment t = tokens.asSlice(TOKEN.byteSize() * i, TOKEN.byteSize());
            int kind = (int) call("clang_getTokenKind", FunctionDescriptor.of(JAVA_INT, TOKEN), t);
            String text = string((MemorySegment) callStruct("clang_getTokenSpelling", FunctionDescriptor.of(STRING, ADDRESS, TOKEN), unit, t));
            out.add(new String[] {String.valueOf(kind), text});
        }
        call("clang_disposeTokens", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, JAVA_INT), unit, tokensPtr.get(ADDRESS, 0), n);
        return out;
    }

    private String string(MemorySegment cxString) {
        MemorySegment chars = (MemorySegment) call("clang_getCString", FunctionDescriptor.of(ADDRESS, STRING), cxString);
        String s = chars.equals(MemorySegment.NULL) ? "" : chars.reinterpret(Long.MAX_VALUE).getString(0);
        call("clang_disposeString", FunctionDescriptor.ofVoid(STRING), cxString);
        return s;
    }

    @Override
    public void close() {
        if (!unit.equals(MemorySegment.NULL)) {
            call("clang_disposeTranslationUnit", FunctionDescriptor.ofVoid(ADDRESS), unit);
        }
        call("clang_disposeIndex", FunctionDescriptor.ofVoid(ADDRESS), index);
        arena.close();
    }
}

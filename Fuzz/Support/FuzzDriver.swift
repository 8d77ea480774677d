import CFuzzDriver

#if canImport(Glibc)
    import Glibc
#endif

/// Starts libFuzzer on a target's `LLVMFuzzerTestOneInput`.
///
/// SwiftPM gives every executable a `main` of its own (renamed for testable
/// imports), so libFuzzer's `main` is not linked: each target's `@main` calls
/// this, which hands the command line to `LLVMFuzzerRunDriver`.
public enum FuzzDriver {
    public typealias TestOneInput = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

    public static func run(_ test: TestOneInput) -> Never {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, test))
    }
}

/// Reports a broken invariant: libFuzzer saves the input that led here.
public func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("invariant broken: \(message())", file: file, line: line) }
}

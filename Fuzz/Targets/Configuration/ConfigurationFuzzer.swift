import Dispatch
import FuzzSupport

@testable import FerryCore

/// The configuration loader (``ConfigurationLoader``) on a YAML or JSON file
/// of any text: duplicate keys, deep nesting, huge numbers, unknown keys,
/// wrong types, and the JSON duplicate-key scanner.
///
/// First byte: bit 0 JSON, else YAML. Checks: the file loads or fails with a
/// ``ConfigurationError`` (never another error, never a crash or a hang); a
/// JSON file in which the scanner finds a repeated key does not load.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfiguration(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let json = input.byte() & 1 != 0
    // An empty file is written as one newline (the same configuration): Foundation's
    // Data(contentsOf:) leaks its 4 KiB read buffer on an empty file (docs/fuzzing.md).
    let text = input.isEmpty ? [0x0A] : input.rest()
    let path = ScratchDirectory.path + (json ? "/ferry.json" : "/ferry.yaml")
    ScratchDirectory.write(text, to: path)
    let outcome = load(ConfigurationLoader(environment: [:], filePath: path))
    if case .failure(let error) = outcome {
        invariant(error is ConfigurationError, "a load failed with \(type(of: error)): \(error)")
    }
    if json, let key = JSONDuplicateKeys.first(in: String(decoding: text, as: UTF8.self)) {
        guard case .failure = outcome else {
            invariant(false, "a JSON file with key '\(key)' twice loaded")
            return 0
        }
    }
    return 0
}

/// What `load()` gave, waited for on this (non-async) thread.
private func load(_ loader: ConfigurationLoader) -> Result<FerryConfiguration, any Error> {
    let done = DispatchSemaphore(value: 0)
    let box = ResultBox()
    Task {
        do {
            box.result = .success(try await loader.load())
        } catch {
            box.result = .failure(error)
        }
        done.signal()
    }
    done.wait()
    return box.result!
}

/// Written by the task once before it signals, read after the wait: never at the same time.
private final class ResultBox: @unchecked Sendable {
    var result: Result<FerryConfiguration, any Error>?
}

@main
enum ConfigurationFuzzer {
    static func main() { FuzzDriver.run(fuzzConfiguration) }
}

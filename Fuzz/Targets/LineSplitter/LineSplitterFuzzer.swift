import FerryCore
import FuzzSupport
import NIOCore

/// The `POST /v1/logs` body splitter (``LineSplitter``).
///
/// First byte: how far into its buffer the body starts. Checks: the lines are
/// those of an independent split (at each LF, one trailing CR removed, empty
/// lines skipped), none holds an LF, and nothing outside the body is read.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLineSplitter(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let offset = Int(input.byte() % 16)
    let body = input.rest()
    var buffer = ByteBuffer()
    buffer.writeRepeatingByte(UInt8(ascii: "\n"), count: offset)
    buffer.writeBytes(body)
    buffer.moveReaderIndex(forwardBy: offset)
    let lines = LineSplitter.lines(of: buffer).map { Array($0.readableBytesView) }
    let expected = body.split(separator: 0x0A, omittingEmptySubsequences: false).compactMap { line -> [UInt8]? in
        let trimmed = line.last == 0x0D ? line.dropLast() : line
        return trimmed.isEmpty ? nil : Array(trimmed)
    }
    invariant(lines == expected, "lines \(lines.map(\.count)), expected \(expected.map(\.count))")
    invariant(lines.allSatisfy { !$0.contains(0x0A) && !$0.isEmpty }, "a line holds an LF or is empty")
    return 0
}

@main
enum LineSplitterFuzzer {
    static func main() { FuzzDriver.run(fuzzLineSplitter) }
}

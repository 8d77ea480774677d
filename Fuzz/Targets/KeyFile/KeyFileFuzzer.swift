import FuzzSupport

@testable import FerryCore

/// The `auth.key-file` reader (``FrameKeyFile``): the text of any file, parsed
/// and loaded from disk with mode 0600 (or 0640, which must be refused).
///
/// First byte: bit 0 builds the text from the input (key lines of 32–39
/// random bytes in hex of either case, comments, blank lines, whitespace
/// around them, CRLF), else takes it raw; bit 1 makes the file group-readable.
/// Checks: the keys parsed are those an independent reading finds, a bad line
/// is refused with its number; loading agrees with parsing (no key, a repeated
/// key and too many keys are refused, by type); a group-readable file is refused.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKeyFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let text = mode & 1 != 0 ? buildText(&input) : input.rest()
    let path = ScratchDirectory.path + "/keys"
    ScratchDirectory.write(text, to: path, mode: mode & 2 != 0 ? 0o640 : 0o600)

    let expected = Reference.keys(text)
    var parsed: [UInt32]?
    do {
        parsed = try FrameKeyFile.parse(text[...], path: path).map(\.id)
        invariant(parsed == (try? expected.get()), "parsed \(String(describing: parsed)), expected \(expected)")
    } catch {
        guard case .badKey(_, let line, _) = error, case .failure(let bad) = expected else {
            invariant(false, "parse failed with \(error), expected \(expected)")
            return 0
        }
        invariant(line == bad.line, "bad key reported on line \(line), expected line \(bad.line)")
    }

    do {
        let ring = try FrameKeyFile.load([path])
        invariant(mode & 2 == 0, "a group-readable key file loaded")
        invariant(ring.keys.map(\.id) == parsed, "loaded \(ring.keys.map(\.id)), parsed \(String(describing: parsed))")
        invariant(ring.signing.id == ring.keys[0].id, "the signing key is not the first")
    } catch {
        switch error {
        case .readableByOthers: invariant(mode & 2 != 0, "a private key file refused as readable by others")
        case .badKey: invariant(parsed == nil, "load refused a key parse took")
        case .noKey: invariant(parsed == [], "load found no key in \(String(describing: parsed))")
        case .duplicateKey: invariant(parsed.map { Set($0).count < $0.count } == true, "a duplicate key among distinct ones")
        case .tooManyKeys(let count, let maximum): invariant(count > maximum && parsed?.count == count, "too many keys: \(count)")
        case .unreadable(_, let reason): invariant(text.count > 64 << 10, "unreadable: \(reason)")
        }
    }
    return 0
}

/// Key lines, comments and blank lines as the input describes them.
private func buildText(_ input: inout FuzzInput) -> [UInt8] {
    var text: [UInt8] = []
    while !input.isEmpty {
        let kind = input.byte()
        if kind & 0x08 != 0 { text += [0x20, 0x09].prefix(Int(kind >> 4 & 2)) }
        switch kind % 4 {
        case 0, 1:
            let secret = input.take(32 + Int(kind >> 4 & 7))
            let digits = Array((kind & 0x80 != 0 ? "0123456789ABCDEF" : "0123456789abcdef").utf8)
            for byte in secret { text += [digits[Int(byte >> 4)], digits[Int(byte & 15)]] }
        case 2:
            text += Array("# comment ".utf8) + input.take(Int(input.byte() % 16)).filter { $0 != 0x0A }
        default:
            break
        }
        if kind & 0x04 != 0 { text.append(0x20) }
        text += kind & 0x40 != 0 ? [0x0D, 0x0A] : [0x0A]
    }
    return text
}

/// The key file format read plainly: a failure names the first bad line.
enum Reference {
    struct BadLine: Error, Equatable {
        var line: Int
    }

    static func keys(_ text: [UInt8]) -> Result<[UInt32], BadLine> {
        var ids: [UInt32] = []
        for (index, raw) in text.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            var line = Array(raw)
            while let first = line.first, first == 0x20 || first == 0x09 { line.removeFirst() }
            while let last = line.last, last == 0x20 || last == 0x09 || last == 0x0D { line.removeLast() }
            if line.isEmpty || line[0] == UInt8(ascii: "#") { continue }
            let nibbles = line.map { byte -> UInt8? in
                switch byte {
                case 0x30...0x39: return byte - 0x30
                case 0x61...0x66: return byte - 0x61 + 10
                case 0x41...0x46: return byte - 0x41 + 10
                default: return nil
                }
            }
            guard line.count % 2 == 0, line.count >= 64, nibbles.allSatisfy({ $0 != nil }) else { return .failure(BadLine(line: index + 1)) }
            let secret = stride(from: 0, to: nibbles.count, by: 2).map { nibbles[$0]! << 4 | nibbles[$0 + 1]! }
            guard Set(secret).count > 1 else { return .failure(BadLine(line: index + 1)) }
            ids.append(FrameKey(secret: secret).id)
        }
        return .success(ids)
    }
}

@main
enum KeyFileFuzzer {
    static func main() { FuzzDriver.run(fuzzKeyFile) }
}

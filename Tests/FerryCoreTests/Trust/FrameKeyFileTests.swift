import Foundation
import Testing

@testable import FerryCore

/// Key files are read from real files with real modes.
struct FrameKeyFileTests {
    private let keyA = String(repeating: "0123456789abcdef", count: 4)
    private let keyB = String(repeating: "fedcba9876543210", count: 4)

    private func file(_ text: String, mode: Int = 0o600) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-key-\(UUID().uuidString)").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode_t(mode))
        return path
    }

    @Test func theFirstKeySignsAndEveryLineVerifies() throws {
        let path = try file("# rotation: new key first\n\(keyB)\n\n  \(keyA)  \r\n")
        let ring = try FrameKeyFile.load([path])
        #expect(ring.keys.count == 2)
        #expect(ring.signing.id == FrameKey(secret: hexBytes(keyB)).id)
    }

    @Test func aFileOthersCanReadIsRefusedWithTheFix() throws {
        let path = try file(keyA + "\n", mode: 0o644)
        #expect(throws: FrameKeyError.readableByOthers(path: path, mode: "644")) { try FrameKeyFile.load([path]) }
        let message = "\(FrameKeyError.readableByOthers(path: path, mode: "644"))"
        #expect(message.contains("chmod 600"))
    }

    @Test func shortOddNonHexRepeatedAndEmptyKeysAreRefusedByLine() throws {
        #expect(throws: FrameKeyError.self) { try FrameKeyFile.load([try file(String(keyA.prefix(62)) + "\n")]) }
        #expect(throws: FrameKeyError.self) { try FrameKeyFile.load([try file(keyA + "0\n")]) }
        let nonHex = try file("\n" + String(keyA.dropLast()) + "g\n")
        #expect(throws: FrameKeyError.badKey(path: nonHex, line: 2, reason: "not a hex character in it (allowed: 0-9, a-f, A-F)")) {
            try FrameKeyFile.load([nonHex])
        }
        #expect(throws: FrameKeyError.self) { try FrameKeyFile.load([try file(String(repeating: "00", count: 32))]) }
        let empty = try file("# nothing yet\n")
        #expect(throws: FrameKeyError.noKey(path: empty)) { try FrameKeyFile.load([empty]) }
        let twice = try file(keyA + "\n" + keyA.uppercased() + "\n")
        #expect(throws: FrameKeyError.self) { try FrameKeyFile.load([twice]) }
        #expect(throws: FrameKeyError.self) { try FrameKeyFile.load(["/nonexistent/ferry.key"]) }
    }

    @Test func errorsNeverQuoteTheKey() throws {
        let path = try file(keyA + "zz\n")
        do {
            _ = try FrameKeyFile.load([path])
            Issue.record("a bad key was accepted")
        } catch {
            #expect(!"\(error)".contains(keyA))
        }
    }

    @Test func keysFromSeveralFilesMakeOneRing() throws {
        let ring = try FrameKeyFile.load([try file(keyA), try file(keyB)])
        #expect(ring.keys.count == 2 && ring.signing.id == FrameKey(secret: hexBytes(keyA)).id)
    }

    private func hexBytes(_ hex: String) -> [UInt8] {
        let characters = Array(hex.utf8)
        return stride(from: 0, to: characters.count, by: 2).map { UInt8(String(decoding: characters[$0...($0 + 1)], as: UTF8.self), radix: 16)! }
    }
}

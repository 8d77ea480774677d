import Foundation
import Testing

@testable import FerryCore

/// The admin token's check of an `Authorization` header.
struct AdminTokenTests {
    private func tokenFile(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-token-\(UUID().uuidString)").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    /// Found by the AdminToken fuzz target: the lengths were compared by their
    /// low byte only, so the token with 256 bytes added was authorized.
    @Test func theTokenWithBytesAddedIsRefused() throws {
        let file: [UInt8] = Array("2345678f708055abcd00abcdedefHHHH0\n".utf8)  // the fuzzer's token file, 33 characters
        let token = try AdminToken.load(try tokenFile(file))
        let secret = "2345678f708055abcd00abcdedefHHHH0"
        #expect(token.authorizes("Bearer " + secret))
        for added in [1, 255, 256, 512] {
            #expect(!token.authorizes("Bearer " + secret + String(repeating: "x", count: added)), "\(added) bytes added")
        }
        #expect(!token.authorizes("Bearer " + secret.dropLast()))
    }
}

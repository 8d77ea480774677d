import NIOCore
import Testing

@testable import FerryCore

struct LineFormatTests {
    private func line(_ text: String) -> String {
        var blob = ByteBuffer()
        LineFormat.append(ByteBuffer(string: text), to: &blob)
        return String(buffer: blob)
    }

    @Test func eachLogBecomesOneLine() {
        #expect(line("hello") == "hello\n")
        #expect(line("") == "\n")
    }

    @Test func aTrailingNewlineIsNotDoubled() {
        #expect(line("hello\n") == "hello\n")
        #expect(line("\n") == "\n")
    }

    @Test func anEmbeddedNewlineIsEscapedSoTheLogStaysOneLine() {
        #expect(line("a\nb") == "a#012b\n")
        #expect(line("a\n\nb\n") == "a#012#012b\n")
    }
}

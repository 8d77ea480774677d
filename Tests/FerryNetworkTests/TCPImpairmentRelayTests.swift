import FerryTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The TCP impairment relay on loopback: it pumps bytes both ways, a stall
/// holds them (and loses none), a cut ends the client's connection with EOF,
/// a reset with ECONNRESET; a seeded schedule is the same for the same seed.
@Suite("Impairment relay (TCP)", .serialized, .timeLimit(.minutes(1)))
struct TCPImpairmentRelayTests {
    /// A TCP echo server on loopback: one thread per connection, bytes sent straight back.
    private final class EchoServer: Sendable {
        let port: Int
        private let fd: CInt

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = IPv4Endpoint(host: "127.0.0.1", port: 0)
            var raw = sockaddr_in()
            raw.sin_family = sa_family_t(AF_INET)
            raw.sin_addr.s_addr = inet_addr(address.host)
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, length)
                    return getsockname(fd, $0, &length)
                }
            }
            Glibc.listen(fd, 16)
            address = IPv4Endpoint(host: "127.0.0.1", port: Int(UInt16(bigEndian: raw.sin_port)))
            port = address.port
            self.fd = fd
            Thread {
                while true {
                    let connection = accept(fd, nil, nil)
                    guard connection >= 0 else { return }
                    Thread {
                        var buffer = [UInt8](repeating: 0, count: 4_096)
                        while true {
                            let count = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
                            guard count > 0 else { break }
                            _ = buffer.withUnsafeBytes { write(connection, $0.baseAddress, count) }
                        }
                        close(connection)
                    }.start()
                }
            }.start()
        }

        func stop() { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    /// A blocking client connection with a receive timeout.
    private func connect(to port: Int) throws -> CInt {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 0, tv_usec: 300_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var raw = sockaddr_in()
        raw.sin_family = sa_family_t(AF_INET)
        raw.sin_addr.s_addr = inet_addr("127.0.0.1")
        raw.sin_port = UInt16(port).bigEndian
        let result = withUnsafePointer(to: &raw) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw TestNetworkError.commandFailed("connect", "errno \(errno)") }
        return fd
    }

    /// Reads what arrives within the timeout: the bytes, and errno if the read failed (0 on EOF or a timeout).
    private func readSome(_ fd: CInt) -> (String, CInt, eof: Bool) {
        var buffer = [UInt8](repeating: 0, count: 4_096)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count > 0 { return (String(decoding: buffer.prefix(count), as: UTF8.self), 0, false) }
        return ("", count < 0 && errno != EAGAIN ? errno : 0, count == 0)
    }

    @Test func stallHoldsCutClosesResetResets() async throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let relay = try TCPImpairmentRelay(
            listen: IPv4Endpoint(host: "127.0.0.1", port: 0), to: IPv4Endpoint(host: "127.0.0.1", port: echo.port), seed: 5)
        defer { relay.stop() }
        let first = try connect(to: relay.endpoint.port)
        defer { close(first) }
        _ = write(first, "hello", 5)
        #expect(readSome(first).0 == "hello", "\(relay)")

        // Until the test ends it: a loaded machine may suspend this test for seconds between two steps.
        relay.inject(.stall(.seconds(600)))
        // Written once the connection's pump holds the stall, so nothing can pass before it.
        #expect(await eventually(seconds: 2) { relay.counters.stallsHeld == 1 })
        _ = write(first, "held", 4)
        #expect(readSome(first).0 == "", "nothing while stalled; \(relay)")
        relay.endStalls()
        var after = ""
        _ = await eventually(seconds: 15) {
            after += readSome(first).0
            return after == "held"
        }
        #expect(after == "held", "\(relay)")

        relay.inject(.cut)
        let cut = readSome(first)
        #expect(await eventually(seconds: 2) { relay.counters.cut == 1 }, "\(relay)")
        #expect(cut.eof || readSome(first).eof, "the client sees EOF after a cut")

        let second = try connect(to: relay.endpoint.port)
        defer { close(second) }
        _ = write(second, "again", 5)
        #expect(readSome(second).0 == "again", "\(relay)")
        relay.inject(.reset)
        #expect(await eventually(seconds: 2) { relay.counters.reset == 1 }, "\(relay)")
        var resetSeen = readSome(second).1
        if resetSeen == 0 { resetSeen = readSome(second).1 }
        #expect(resetSeen == ECONNRESET, "errno \(resetSeen); \(relay)")
        #expect(relay.counters.accepted == 2)
    }

    @Test func aSeedGivesOneSchedule() {
        let kinds: [TCPFault] = [.stall(.seconds(1)), .cut, .reset]
        let one = TCPImpairmentRelay.randomFaults(seed: 8, count: 6, over: .seconds(20), kinds: kinds)
        let again = TCPImpairmentRelay.randomFaults(seed: 8, count: 6, over: .seconds(20), kinds: kinds)
        let other = TCPImpairmentRelay.randomFaults(seed: 9, count: 6, over: .seconds(20), kinds: kinds)
        #expect(one.map { "\($0.at) \($0.1)" } == again.map { "\($0.at) \($0.1)" })
        #expect(one.map { "\($0.at) \($0.1)" } != other.map { "\($0.at) \($0.1)" })
        #expect(one.allSatisfy { $0.at <= .seconds(20) })
    }
}

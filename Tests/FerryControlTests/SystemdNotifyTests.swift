import FerryTestSupport
import Foundation
import Testing

/// `Type=notify` as systemd runs it: `ferry serve` with `NOTIFY_SOCKET` set tells
/// the socket it is ready once its listeners are bound, frames a SIGHUP reload
/// with `RELOADING=1` and `READY=1`, and says `STOPPING=1` at SIGTERM.
@Suite(.timeLimit(.minutes(1)))
struct SystemdNotifyTests {
    @Test func serveTellsSystemdItIsReadyReloadingAndStopping() async throws {
        let socket = try NotifySocketReceiver()
        let (ferry, _, _) = try await FerryProcess.serve([], environment: ["NOTIFY_SOCKET": socket.address])
        #expect(try await onOwnThread { socket.receive() } == "READY=1")

        ferry.signal(SIGHUP)
        let reloading = try #require(try await onOwnThread { socket.receive() })
        #expect(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="), "\(reloading)")
        #expect(try await onOwnThread { socket.receive() } == "READY=1")
        #expect(await ferry.waitForLine(message: "SIGHUP: files reopened") != nil)

        ferry.signal(SIGTERM)
        #expect(try await onOwnThread { socket.receive() } == "STOPPING=1")
        #expect(await ferry.waitForExit(timeout: 10) == 0)
    }

    /// A socket nobody listens on costs a warning, not the start.
    @Test func anUnreachableSocketIsLoggedAndFerryRunsOn() async throws {
        let (ferry, _, _) = try await FerryProcess.serve([], environment: ["NOTIFY_SOCKET": "/nonexistent/ferry-notify"])
        #expect(await ferry.waitForLine(message: "systemd notification failed") != nil)
        ferry.signal(SIGTERM)
        #expect(await ferry.waitForExit(timeout: 10) == 0)
    }
}

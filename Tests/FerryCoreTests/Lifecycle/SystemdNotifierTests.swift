import FerryCore
import FerryTestSupport
import Foundation
import Testing

/// `SystemdNotifier` against a real unix datagram socket, bound as systemd binds
/// `NOTIFY_SOCKET`: by path and by abstract name.
struct SystemdNotifierTests {
    @Test(arguments: [false, true])
    func eachStateArrivesAsOneDatagram(abstract: Bool) throws {
        let receiver = try NotifySocketReceiver(abstract: abstract)
        let notifier = SystemdNotifier(socket: receiver.address)
        try notifier.send(.ready)
        #expect(receiver.receive() == "READY=1")
        let before = SystemdNotifier.monotonicMicroseconds()
        try notifier.send(.reloadingNow())
        let after = SystemdNotifier.monotonicMicroseconds()
        let reloading = try #require(receiver.receive()).split(separator: "\n")
        #expect(reloading.first == "RELOADING=1")
        let microseconds = try #require(reloading.last.flatMap { UInt64($0.dropFirst("MONOTONIC_USEC=".count)) })
        #expect(reloading.count == 2 && reloading[1].hasPrefix("MONOTONIC_USEC="))
        #expect((before...after).contains(microseconds))
        try notifier.send(.stopping)
        #expect(receiver.receive() == "STOPPING=1")
    }

    @Test func theSocketComesFromTheEnvironment() {
        #expect(SystemdNotifier(environment: [:]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": ""]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/systemd/notify"])?.socket == "/run/systemd/notify")
    }

    @Test func anAddressThatIsNoUnixSocketIsRefusedAndNamed() {
        for socket in ["run/systemd/notify", "@", "/" + String(repeating: "x", count: 200)] {
            #expect(throws: SystemdNotifier.Error.invalidSocket(socket)) { try SystemdNotifier(socket: socket).send(.ready) }
        }
        let nobody = SystemdNotifier(socket: "/nonexistent-\(UUID().uuidString)")
        #expect(throws: SystemdNotifier.Error.self) { try nobody.send(.ready) }
    }
}

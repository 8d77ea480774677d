import FerryTestSupport
import Foundation
import Testing

@Suite("Test network: hosts in namespaces")
struct TestNetworkTests {
    @Test(.enabled(if: TestNetwork.isAvailable))
    func twoHostsOnALinkReachEachOtherAndAreRemovedAfter() throws {
        let network = try TestNetwork("net")
        let edge = try network.addHost("edge")
        let aggregator = try network.addHost("aggr")
        let link = try network.link(edge, aggregator)
        let receiver = """
            import socket, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 0)); print(s.getsockname()[1], flush=True)
            s.settimeout(10); print(s.recvfrom(100)[0].decode(), flush=True)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", aggregator.namespace!, "python3", "-c", receiver, link.addressB]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var port = ""
        while !port.hasSuffix("\n") {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            guard !byte.isEmpty else { break }
            port += String(decoding: byte, as: UTF8.self)
        }
        let send = "import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'hello', (sys.argv[1], int(sys.argv[2])))"
        try network.run(on: edge, ["/usr/bin/env", "python3", "-c", send, link.addressB, port.trimmingCharacters(in: .whitespacesAndNewlines)])
        process.waitUntilExit()
        let received = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(received.contains("hello"))
        network.remove()
        let left = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        #expect(!left.contains { $0.hasPrefix(network.prefix) })
    }
}

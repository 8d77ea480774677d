import NIOCore
import Testing

@testable import FerryCore

struct PortSharingTests {
    private let table = """
          sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
          1: 0100007F:1538 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1001 2 0000000000000000 0
          2: 0100007F:1538 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1002 2 0000000000000000 0
          3: 00000000:1538 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1003 2 0000000000000000 0
          4: 0200007F:1538 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1004 2 0000000000000000 0
          5: 0100007F:1538 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 1005 2 0000000000000000 0
          6: 0100007F:1539 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1006 2 0000000000000000 0
        """

    @Test func theTableFormOfAnAddressIsWhatTheKernelPrints() throws {
        #expect(PortSharing.tableForm(of: try SocketAddress(ipAddress: "127.0.0.1", port: 5432)) == "0100007F")
        #expect(PortSharing.tableForm(of: try SocketAddress(ipAddress: "::1", port: 5432)) == "00000000000000000000000001000000")
    }

    /// Port 0x1538 = 5432. Ours is inode 1001 on 127.0.0.1.
    @Test func foreignReceiversAreOtherUnconnectedSocketsThatOverlap() throws {
        let lines = KernelUDPStats.parseSocketTable(table)
        #expect(lines.count == 6)
        let ours = try SocketAddress(ipAddress: "127.0.0.1", port: 5432)
        let foreign = PortSharing.foreignReceivers(of: ours, own: [1001], table: lines).map(\.inode)
        // 1002 same address, 1003 the wildcard; not 1004 (another address),
        // 1005 (connected: hears only its peer), 1006 (another port).
        #expect(foreign == [1002, 1003])
        let wildcard = try SocketAddress(ipAddress: "0.0.0.0", port: 5432)
        #expect(PortSharing.foreignReceivers(of: wildcard, own: [1003], table: lines).map(\.inode) == [1001, 1002, 1004])
        #expect(PortSharing.foreignReceivers(of: ours, own: [1001, 1002, 1003], table: lines).isEmpty)
    }

    @Test func anIPv6WildcardOverlapsIPv4() {
        #expect(PortSharing.overlaps(String(repeating: "0", count: 32), "0100007F"))
        #expect(!PortSharing.overlaps("00000000000000000000000001000000", "0100007F"))
        #expect(!PortSharing.overlaps("00000000000000000000000001000000", "00000000"))
    }
}

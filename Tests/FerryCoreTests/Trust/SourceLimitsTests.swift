import NIOCore
import Testing

@testable import FerryCore

/// Allowlist blocks and the per-source token buckets, over an injected clock.
struct SourceLimitsTests {
    private func key(_ text: String) -> SourceKey { SourceKey(parsing: text)! }

    @Test func blocksMatchTheirAddressesAndIPv4MatchesItsMappedForm() throws {
        let ten = try #require(CIDRBlock(parsing: "10.0.0.0/8"))
        #expect(ten.contains(key("10.255.1.2")) && !ten.contains(key("11.0.0.1")))
        #expect(ten.contains(key("::ffff:10.1.2.3")))  // an IPv4 client of a dual-stack socket
        let one = try #require(CIDRBlock(parsing: "192.0.2.7"))
        #expect(one.prefixLength == 32 && one.contains(key("192.0.2.7")) && !one.contains(key("192.0.2.8")))
        let six = try #require(CIDRBlock(parsing: "2001:db8::/32"))
        #expect(six.contains(key("2001:db8:ffff::1")) && !six.contains(key("2001:db9::1")) && !six.contains(key("10.0.0.1")))
        #expect(try #require(CIDRBlock(parsing: "::1")).contains(key("::1")))
        let any4 = try #require(CIDRBlock(parsing: "0.0.0.0/0"))
        #expect(any4.contains(key("203.0.113.9")) && !any4.contains(key("::1")))
        #expect(try #require(CIDRBlock(parsing: "::/0")).contains(key("::1")))
        #expect(six.description == "2001:db8::/32" && ten.description == "10.0.0.0/8")
    }

    @Test func malformedBlocksAreRefused() {
        for text in ["10.1.2.3/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "example.com", "::1/129", "1.2.3.4/+8", "", "/8", "10.0.0.0/8/8"] {
            #expect(CIDRBlock(parsing: text) == nil, "\(text)")
        }
    }

    @Test func aSourceGetsItsBurstThenItsRate() {
        var table = SourceRateTable(rate: 100, burst: 10, capacity: 4)
        let loud = key("192.0.2.1")
        #expect(table.take(loud, count: 25, now: 0) == 10)
        #expect(table.take(loud, now: 1_000_000) == 0)  // 1 ms: 0.1 token
        #expect(table.take(loud, count: 5, now: 50_000_000) == 5)  // 50 ms: 5 tokens
        #expect(table.take(loud, count: 100, now: 10_000_000_000) == 10)  // never more than the burst
        #expect(table.take(key("192.0.2.2"), count: 3, now: 10_000_000_000) == 3)  // another source has its own bucket
        let top = table.topDropped(5)
        #expect(top.count == 1 && top[0].source == loud && top[0].dropped == 106 && top[0].admitted == 25)
    }

    @Test func allOrNothingTakesNoTokenWhenTheyDoNotAllFit() {
        var table = SourceRateTable(rate: 100, burst: 10, capacity: 4)
        let client = key("192.0.2.9")
        #expect(table.take(client, count: 6, now: 0, allOrNothing: true) == 6)
        #expect(table.take(client, count: 6, now: 0, allOrNothing: true) == 0)  // 4 left: none taken
        #expect(table.take(client, count: 4, now: 0, allOrNothing: true) == 4)  // still 4
        #expect(table.take(client, count: 11, now: 10_000_000_000, allOrNothing: true) == 0)  // more than the burst never fits
        #expect(table.topDropped(1).first?.dropped == 17)
    }

    @Test func aFullTableEvictsTheLeastRecentlySeenSource() {
        var table = SourceRateTable(rate: 1, burst: 1, capacity: 3)
        for index in 1...3 { _ = table.take(key("192.0.2.\(index)"), now: 0) }
        _ = table.take(key("192.0.2.1"), now: 1)  // seen again: now the most recent
        _ = table.take(key("192.0.2.4"), now: 2)  // evicts .2, the least recently seen
        #expect(table.evictions == 1 && table.count == 3)
        #expect(table.take(key("192.0.2.1"), now: 3) == 0)  // kept: its bucket is still empty
        #expect(table.take(key("192.0.2.2"), now: 3) == 1)  // forgotten: a new bucket (another eviction)
        #expect(table.evictions == 2)
        for index in 0..<10_000 { _ = table.take(SourceKey(high: 1, low: UInt64(index)), now: 4) }
        #expect(table.count == 3, "a flood of addresses stays within the table")
    }

    @Test func listenerURLsCarryTheirOwnAllowlist() throws {
        let (text, allow) = FerryConfiguration.splitAllow("tcp://0.0.0.0:6514?framing=lf&allow=10.0.0.0/8&allow=::1")
        #expect(text == "tcp://0.0.0.0:6514?framing=lf" && allow == ["10.0.0.0/8", "::1"])
        #expect(FerryConfiguration.splitAllow("udp://0.0.0.0:514?allow=192.0.2.0/24") == ("udp://0.0.0.0:514", ["192.0.2.0/24"]))
        #expect(throws: ConfigurationError.self) { try FerryConfiguration.allowlist(["10.1.2.3/8"], key: "allow") }
    }
}

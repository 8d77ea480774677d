import Testing

@testable import FerryCore

struct RendezvousHashTests {
    private let members = ["ferry://agg-a:5514", "ferry://agg-b:5514", "ferry://agg-c:5514"].map(RendezvousHash.memberID)
    private let sources = (1...3000).map { SourceKey(high: 0, low: 0x0000_FFFF_0A00_0000 | UInt64($0)) }

    @Test func spreadsSourcesOverEveryMember() {
        var counts = [0, 0, 0]
        for source in sources { counts[RendezvousHash.pick(source, members: members) { _ in true }!] += 1 }
        for count in counts { #expect(count > 800 && count < 1200, "\(counts)") }
    }

    @Test func aMemberThatGoesDownMovesOnlyItsOwnSources() {
        let before = sources.map { RendezvousHash.pick($0, members: members) { _ in true }! }
        let after = sources.map { RendezvousHash.pick($0, members: members) { $0 != 1 }! }
        for (old, new) in zip(before, after) {
            if old == 1 { #expect(new != 1) } else { #expect(new == old) }
        }
        #expect(RendezvousHash.pick(sources[0], members: members) { _ in false } == nil)
    }

    @Test func aMemberKeepsItsSourcesWhateverItsPositionInTheList() {
        let reordered = [members[2], members[0], members[1]]
        for source in sources.prefix(500) {
            let original = RendezvousHash.pick(source, members: members) { _ in true }!
            let moved = RendezvousHash.pick(source, members: reordered) { _ in true }!
            #expect(reordered[moved] == members[original])
        }
    }
}

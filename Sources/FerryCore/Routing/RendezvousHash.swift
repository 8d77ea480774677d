/// Rendezvous (highest random weight) hashing: each source picks the member
/// with the highest hash of (source, member). Removing a member moves only the
/// sources it had; the others stay where they are, which connection-count
/// balancing cannot promise.
enum RendezvousHash {
    /// The member (an index into `members`, each member's stable id) that
    /// `source` goes to, among those `available` says can take traffic; nil when none can.
    @inline(__always)
    static func pick(_ source: SourceKey?, members: [UInt64], available: (Int) -> Bool) -> Int? {
        let key = source.map { mix($0.high ^ mix($0.low)) } ?? 0
        var best: Int?
        var bestWeight: UInt64 = 0
        for (member, id) in members.enumerated() where available(member) {
            let weight = mix(key ^ id)
            if best == nil || weight > bestWeight {
                best = member
                bestWeight = weight
            }
        }
        return best
    }

    /// SplitMix64's finaliser: a cheap, well-spread 64-bit mix.
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension RendezvousHash {
    /// A member's id: FNV-1a of its URL, so that a member keeps its sources
    /// whatever its position in the list (and across restarts and reloads).
    static func memberID(_ name: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
        }
        return mix(hash)
    }
}

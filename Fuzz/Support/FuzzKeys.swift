import FerryCore

/// Two fixed keys: a keyed target verifies with both (as during a rotation)
/// and can sign its input with either, so the fuzzer reaches past the MAC.
public enum FuzzKeys {
    public static let first = FrameKey(secret: (0..<32).map { UInt8($0 * 7 + 1) })
    public static let second = FrameKey(secret: (0..<32).map { UInt8(255 - $0 * 3) })
    public static let ring = FrameKeyRing(keys: [first, second])

    /// The key of `ring` named `id`.
    public static func key(id: UInt32) -> FrameKey? { ring.key(id: id) }
}

/// Why a `ferry://` frame or ack was not trusted. Each is counted
/// (`ferry_frames_unauthenticated_total{kind,reason}`) and the frame or ack is
/// dropped before it touches any state: no dedupe mark, no ack, no breaker outcome.
public enum FrameAuthFailure: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// This Ferry has keys; the frame carries no MAC.
    case unkeyed
    /// The frame names a key id this Ferry does not hold (a wrong key, or one rotated out).
    case unknownKey
    /// The MAC does not match: forged, or changed on the way.
    case badMAC
    /// The frame is keyed but this Ferry has no `auth.key-file`, so it cannot verify it.
    case noLocalKey

    /// The label value in metrics, status and logs.
    public var description: String {
        switch self {
        case .unkeyed: return "unkeyed"
        case .unknownKey: return "unknown_key"
        case .badMAC: return "bad_mac"
        case .noLocalKey: return "no_local_key"
        }
    }
}

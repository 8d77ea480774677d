import Crypto
import Foundation

/// One shared secret that signs and verifies `ferry://` frames and acks
/// (HMAC-SHA256, truncated to ``FrameKey/macBytes``).
///
/// The secret never leaves this type: not in logs, status or descriptions.
/// Only its ``id`` travels (in every keyed frame), so a receiver holding
/// several keys during a rotation knows which one to verify with.
public struct FrameKey: Sendable, CustomStringConvertible {
    /// Bytes of the MAC a keyed frame carries: 128 of HMAC-SHA256's 256 bits.
    public static let macBytes = 16
    /// Bytes of the key id before the MAC.
    public static let idBytes = 4
    /// Shortest secret accepted, in bytes (64 hex characters).
    public static let minimumSecretBytes = 32

    /// The first 4 bytes of HMAC(secret, "ferry key id v1"): names the key, says nothing about it.
    public let id: UInt32
    /// HMAC state with the key's inner and outer pads already applied: each
    /// frame copies it instead of hashing the key again.
    private let prepared: PreparedHMAC

    /// A key from its secret bytes (at least ``minimumSecretBytes``).
    public init(secret: [UInt8]) {
        let key = SymmetricKey(data: secret)
        prepared = PreparedHMAC(state: HMAC<SHA256>(key: key))
        let tag = HMAC<SHA256>.authenticationCode(for: Array("ferry key id v1".utf8), using: key)
        id = tag.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self).bigEndian }
    }

    /// The truncated MAC of `bytes`, as two big-endian words.
    public func mac(_ bytes: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
        var authenticator = prepared.state
        authenticator.update(data: bytes)
        let code = authenticator.finalize()
        return code.withUnsafeBytes { tag in
            (tag.loadUnaligned(fromByteOffset: 0, as: UInt64.self).bigEndian, tag.loadUnaligned(fromByteOffset: 8, as: UInt64.self).bigEndian)
        }
    }

    /// Whether `expected` is the MAC of `bytes`, compared in constant time.
    public func verify(_ bytes: UnsafeRawBufferPointer, expected: (UInt64, UInt64)) -> Bool {
        let computed = mac(bytes)
        return (computed.0 ^ expected.0) | (computed.1 ^ expected.1) == 0
    }

    /// The key id in hex; never the secret.
    public var description: String { "key \(String(id, radix: 16))" }
}

/// A keyed HMAC that is only ever copied, never changed in place, so any
/// thread may copy it: swift-crypto's digest state is copy-on-write (a copy
/// that is updated takes its own context first, `isKnownUniquelyReferenced`
/// on an atomic reference count), which `HMAC` does not declare as `Sendable`.
private struct PreparedHMAC: @unchecked Sendable {
    let state: HMAC<SHA256>
}

/// The keys this Ferry holds: the first signs everything it sends, every one
/// verifies what it receives (so a rotation has no gap, see docs/trust.md).
public struct FrameKeyRing: Sendable, CustomStringConvertible {
    /// Signs frames and acks this Ferry sends.
    public let signing: FrameKey
    /// Every key accepted for verification, the signing key first.
    public let keys: [FrameKey]

    /// - Precondition: `keys` is not empty and no two share an id (``FrameKeyFile`` checks both).
    public init(keys: [FrameKey]) {
        precondition(!keys.isEmpty, "a key ring needs a key")
        self.signing = keys[0]
        self.keys = keys
    }

    /// The key named `id`, if this ring holds it.
    @inline(__always)
    public func key(id: UInt32) -> FrameKey? {
        for key in keys where key.id == id { return key }
        return nil
    }

    /// Key ids, the signing key first; never the secrets.
    public var description: String { keys.map { String($0.id, radix: 16) }.joined(separator: ",") }
}

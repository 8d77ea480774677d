/// Who Ferry trusts (`auth.*`): the key files that sign and verify `ferry://`
/// frames and acks. Paths only; the keys are read by ``FrameKeyFile`` when the
/// relay starts (and checked when the configuration is read), never kept here.
public struct TrustSettings: Sendable, Equatable {
    /// `auth.key-file` then `auth.key-files`, in order: the first key of the first file signs.
    public var keyFiles: [String] = []

    public init() {}

    /// The key ring, or nil when no key file is configured (unkeyed `ferry://`).
    public func loadKeys() throws(FrameKeyError) -> FrameKeyRing? {
        keyFiles.isEmpty ? nil : try FrameKeyFile.load(keyFiles)
    }
}

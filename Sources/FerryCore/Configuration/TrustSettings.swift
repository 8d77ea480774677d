/// Who Ferry trusts (`auth.*`): the key files that sign and verify `ferry://`
/// frames and acks. Paths only; the keys are read by ``FrameKeyFile`` when the
/// relay starts (and checked when the configuration is read), never kept here.
public struct TrustSettings: Sendable, Equatable {
    /// `auth.key-file` then `auth.key-files`, in order: the first key of the first file signs.
    public var keyFiles: [String] = []
    /// `admin.token-file`: the bearer token of state-changing HTTP endpoints (nil: those endpoints are off).
    public var adminTokenFile: String?

    public init() {}

    /// The key ring, or nil when no key file is configured (unkeyed `ferry://`).
    /// The admin token, or nil when none is configured.
    public func loadAdminToken() throws(AdminTokenError) -> AdminToken? {
        guard let adminTokenFile else { return nil }
        return try AdminToken.load(adminTokenFile)
    }

    public func loadKeys() throws(FrameKeyError) -> FrameKeyRing? {
        keyFiles.isEmpty ? nil : try FrameKeyFile.load(keyFiles)
    }
}

import Foundation

/// Host names for a child process that never leave the machine.
///
/// The child runs in a mount namespace of its own (`unshare --mount`) where a
/// hosts file of the test's replaces `/etc/hosts` and a `resolv.conf` that
/// names only `127.0.0.1` replaces `/etc/resolv.conf`. A name missing from the
/// hosts file then falls through to a "DNS server" on loopback (none listens,
/// so the query is refused at once) instead of the machine's resolver: a test
/// sends nothing beyond loopback. Use names under `.test` or `.invalid` only.
public struct PrivateNames: Sendable {
    /// The hosts file: rewrite it in place (``rewrite(_:)``), as a bind mount requires the same inode.
    public let hostsPath: String
    public let resolverPath: String

    /// - Parameter resolverOptions: the `options` line of the private `resolv.conf`.
    public init(hosts: String, resolverOptions: String = "timeout:1 attempts:1") throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-dns-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        hostsPath = dir + "/hosts"
        resolverPath = dir + "/resolv.conf"
        try hosts.write(toFile: hostsPath, atomically: false, encoding: .utf8)
        try "nameserver 127.0.0.1\noptions \(resolverOptions)\n".write(toFile: resolverPath, atomically: false, encoding: .utf8)
    }

    /// `unshare` wrapper for ``FerryProcess``: the child sees only these names.
    public var wrapper: [String] {
        [
            "/usr/bin/unshare", "--mount", "sh", "-c",
            "mount --bind \(hostsPath) /etc/hosts && mount --bind \(resolverPath) /etc/resolv.conf && exec \"$0\" \"$@\"",
        ]
    }

    /// Replaces the hosts file's contents, keeping its inode.
    public func rewrite(_ contents: String) throws {
        guard let handle = FileHandle(forWritingAtPath: hostsPath) else {
            throw CocoaError(.fileNoSuchFile)
        }
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(contents.utf8))
        try handle.close()
    }
}

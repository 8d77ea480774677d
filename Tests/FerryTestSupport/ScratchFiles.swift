import Foundation

/// A new empty directory under the system's temporary directory, named `ferry-PREFIX-UUID`.
public func scratchDirectory(_ prefix: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-\(prefix)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Writes `yaml` to `directory/ferry.yaml` and returns its path.
public func writeConfigFile(_ yaml: String, in directory: String) throws -> String {
    let path = directory + "/ferry.yaml"
    try yaml.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

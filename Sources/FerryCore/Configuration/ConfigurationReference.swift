import Foundation
/// The table of keys in docs/configuration.md, generated from ``FerryConfiguration/keys``.
///
/// The table sits between two marker lines; `ferry config-reference --update docs/configuration.md` rewrites
/// what is between them and leaves the rest of the page alone, and `ConfigurationReferenceTests` fails while
/// the committed page differs from what the definitions generate.
public enum ConfigurationReference {
    /// The command that brings the page up to date, for messages.
    public static let updateCommand = "swift run ferry config-reference --update docs/configuration.md"

    static let beginMarker = "<!-- BEGIN GENERATED: configuration keys (`\(updateCommand)`; do not edit by hand) -->"
    static let endMarker = "<!-- END GENERATED: configuration keys -->"

    /// The markdown table of `keys`, one row per key, between the markers.
    public static func table(_ keys: [ConfigurationKey] = FerryConfiguration.keys) -> String {
        var lines = [
            beginMarker,
            "| key | environment | flag | default | allowed | meaning |",
            "|---|---|---|---|---|---|",
        ]
        for key in keys {
            let environment = "`\(key.environmentVariable)`" + (key.isList ? " (comma-separated)" : "")
            let flag = "`--\(key.flag)`" + (key.isList ? " (repeatable)" : "")
            let defaultValue = [key.defaultValue.map { "`\($0)`" }, key.defaultNote.map { key.defaultValue == nil ? $0 : "(\($0))" }]
                .compactMap { $0 }.joined(separator: " ")
            let meaning = key.help + (key.details.map { ($0.first == "(" ? " " : ". ") + $0 } ?? "")
            let cells = ["`\(key.name)`", environment, flag, defaultValue.isEmpty ? "none" : defaultValue, allowedCell(key.allowed), meaning]
            lines.append("| " + cells.map { $0.escapingPipes() }.joined(separator: " | ") + " |")
        }
        lines.append(endMarker)
        return lines.joined(separator: "\n")
    }

    /// `document` with the text between the markers replaced by ``table(_:)``; nil when the markers are missing.
    public static func updating(_ document: String, keys: [ConfigurationKey] = FerryConfiguration.keys) -> String? {
        guard let begin = document.range(of: beginMarker), let end = document.range(of: endMarker, range: begin.upperBound..<document.endIndex)
        else { return nil }
        return String(document[..<begin.lowerBound]) + table(keys) + String(document[end.upperBound...])
    }

    private static func allowedCell(_ allowed: ConfigurationKey.Allowed) -> String {
        switch allowed {
        case .choice(let words): words.map { "`\($0)`" }.joined(separator: ", ")
        case .text(let text), .list(let text): text
        default: allowed.summary.map { "`\($0)`" } ?? ""
        }
    }
}

extension String {
    /// A `|` inside a table cell ends the cell unless escaped.
    fileprivate func escapingPipes() -> String {
        split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\\|")
    }
}

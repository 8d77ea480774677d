import ArgumentParser
import FerryCore
import Foundation

/// `ferry config-reference` (hidden): the table of configuration keys for docs/configuration.md, from their definitions.
struct ConfigReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-reference",
        abstract: "Print the configuration reference table generated from the key definitions.",
        discussion: "With --update PATH, rewrite the generated table inside that page (between its marker lines) instead.",
        shouldDisplay: false)

    @Option(name: .long, help: "A page holding the generated table's markers (docs/configuration.md) to bring up to date.")
    var update: String?

    func run() throws {
        guard let update else {
            print(ConfigurationReference.table())
            return
        }
        let page = try String(contentsOfFile: update, encoding: .utf8)
        guard let updated = ConfigurationReference.updating(page) else {
            throw ValidationError("\(update) has no generated-table markers; add them where the table belongs")
        }
        if updated != page { try updated.write(toFile: update, atomically: true, encoding: .utf8) }
        print(updated == page ? "\(update) is up to date" : "\(update) updated")
    }
}

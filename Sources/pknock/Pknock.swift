import ArgumentParser
import KnockCore

/// The PortKnockO command-line client: knock, inspect and validate.
@main
struct Pknock: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pknock",
        abstract: "PortKnockO client: check configurations, knock, and inspect pknockd.",
        version: portKnockOVersion,
        subcommands: [KnockCommand.self, Check.self, Status.self, Events.self, Open.self, Close.self, Translate.self, KeygenCommand.self, ClientConfig.self]
    )
}

import ArgumentParser
import Foundation
import Micro
import MicroCore
import MicroRPC

/// `micro stream SERVICE ENDPOINT [MESSAGE...]`: a bidirectional stream; sends each message (or each line of
/// standard input), closes its side, prints every message received, one per line.
struct StreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "Open a bidirectional stream, send messages, print every message received.",
        discussion: """
        Sends each MESSAGE (JSON, checked before sending), or each line of standard input when none is given, then \
        closes the sending side and prints what the service sends until it ends the stream.
        Example: micro stream greeter Greeter.Stream '{"name": "Ada"}' '{"name": "Grace"}'

        \(CLIError.exitCodeHelp)
        """
    )

    @OptionGroup var flags: ServiceFlags
    @Argument(help: "The service.") var service: String
    @Argument(help: "The stream endpoint, e.g. Greeter.Stream.") var endpoint: String
    @Argument(help: "Messages to send (JSON); none: the lines of standard input.") var messages: [String] = []
    @OptionGroup var call: CallFlags

    func run() async throws {
        // Checked before anything is sent: a bad message fails the command without a half-sent stream.
        let bodies = try messages.map { try checkedBody($0, raw: call.raw) }
        try await withService(flags) { micro in
            let options = try await call.callOptions(for: service, in: micro)
            let stream: ClientCallStream
            do {
                stream = try await micro.client.stream(service: service, endpoint: endpoint, contentType: call.contentType,
                                                       metadata: try parseMetadata(call.metadata), options: options)
            } catch let error as RPCError {
                throw CLIError(error, service: service, endpoint: endpoint)
            }
            let raw = call.raw
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        if bodies.isEmpty {
                            while let line = readLine(strippingNewline: true) {
                                if line.isEmpty { continue }
                                try await stream.send(try checkedBody(line, raw: raw))
                            }
                        } else {
                            for message in bodies { try await stream.send(message) }
                        }
                        try await stream.closeSend()
                    }
                    while let message = try await stream.receive() {
                        FileHandle.standardOutput.write(Data(message + (message.last == UInt8(ascii: "\n") ? [] : [UInt8(ascii: "\n")])))
                    }
                    try await group.waitForAll()
                }
            } catch let error as RPCError {
                stream.cancel()
                throw CLIError(error, service: service, endpoint: endpoint)
            }
        }
    }
}

import ArgumentParser
import Foundation
import Micro
import MicroCore
import MicroRPC
import Synchronization

/// `micro publish TOPIC '{json}'`: one message through the configured broker.
struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish a message (JSON) to a topic and print how many subscribers got it.",
        discussion: "Example: micro publish greeter.events '{\"say\": \"hi\"}'\n\n\(CLIError.exitCodeHelp)"
    )

    @OptionGroup var flags: ServiceFlags
    @Argument(help: "The topic.") var topic: String
    @Argument(help: "The message: JSON (checked), - for standard input.") var body: String
    @Option(name: .customLong("metadata"), help: "Message header key=value (repeatable).") var metadata: [String] = []
    @Flag(help: "Send the body as raw bytes, not JSON.") var raw = false
    @Option(help: "Publish this many messages (\"<body>-<i>\" as a JSON string each, when more than one).") var count = 1
    @Option(help: "From this many tasks, each waiting for its acknowledgment before its next.") var concurrency = 1
    @Flag(help: "Exit 69 when a message reached no subscriber.") var requireSubscriber = false

    func validate() throws {
        if count <= 0 || count > 100_000_000 { throw ValidationError("--count needs a positive integer, not \(count)") }
        if concurrency <= 0 || concurrency > 100_000 { throw ValidationError("--concurrency needs a positive integer, not \(concurrency)") }
    }

    func run() async throws {
        let text = body == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) : body
        let bytes = try checkedBody(text, raw: raw)
        var header: [String: String] = [:]
        for (k, v) in try parseMetadata(metadata) { header[k] = v }
        header[BrokerMessage.contentTypeHeader] = raw ? ContentType.raw : ContentType.json
        let (count, raw, topic, messageHeader) = (self.count, self.raw, self.topic, header)
        let tasks = min(concurrency, count)
        let start = ContinuousClock.now
        let totals = try await withService(flags) { micro -> (delivered: Int, skipped: Int, missed: Int) in
            let client = micro.client
            do {
                return try await withThrowingTaskGroup(of: (Int, Int, Int).self) { group in
                    for t in 0..<tasks {
                        group.addTask {
                            var counts = (0, 0, 0)
                            for i in stride(from: t, to: count, by: tasks) {
                                // Numbered copies stay valid JSON: the body and its number as one string.
                                let message = count == 1 ? bytes : raw ? Array("\(text)-\(i)".utf8)
                                    : Array(try JSONEncoder().encode("\(text)-\(i)"))
                                let r = try await client.publish(topic: topic, message: message, metadata: messageHeader)
                                counts.0 += r.delivered
                                counts.1 += r.skipped
                                if r.delivered == 0 { counts.2 += 1 }
                            }
                            return counts
                        }
                    }
                    var total = (delivered: 0, skipped: 0, missed: 0)
                    for try await c in group { total = (total.delivered + c.0, total.skipped + c.1, total.missed + c.2) }
                    return total
                }
            } catch let error as RPCUsageError {
                throw CLIError("\(error)", .usage)
            } catch {
                throw CLIError("publish to \(topic): \(error)", .unavailable)
            }
        }
        let elapsed = start.duration(to: .now).inSeconds
        say("published \(count) to \(topic): delivered \(totals.delivered), skipped \(totals.skipped) in \(String(format: "%.3f", elapsed)) s (\(Int(Double(count) / max(elapsed, 1e-9)))/s)")
        if requireSubscriber, totals.missed > 0 {
            throw CLIError("\(totals.missed) of \(count) messages reached no subscriber of \(topic)", .unavailable)
        }
    }
}

/// `micro subscribe TOPIC`: prints each message's body on its own line.
struct Subscribe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Subscribe to a topic and print each message's body on its own line.",
        discussion: "Prints \"subscribed <topic>\" once the subscription is registered. Exits 0 after --count messages, 124 when --timeout passes first."
    )

    @OptionGroup var flags: ServiceFlags
    @Argument(help: "The topic.") var topic: String
    @Option(help: "Exit after this many messages.") var count: Int?
    @Option(help: "Join this queue group (one member gets each message).") var queue: String?
    @Option(help: "Give up after this long: 60, 1.5s, 300ms.") var timeout: DurationArgument?

    func validate() throws {
        if let count, count <= 0 { throw ValidationError("--count needs a positive integer, not \(count)") }
    }

    func run() async throws {
        let finished = try await withService(flags) { micro -> Bool in
            guard let broker = micro.broker else { throw CLIError("--broker none cannot subscribe", .usage) }
            let (done, finish) = AsyncStream<Void>.makeStream()
            let seen = Mutex(0)
            let limit = count
            let subscription = try await broker.subscribe(topic, queue: queue) { message in
                // One line per message, written whole under the lock (handlers may run concurrently).
                let reached = seen.withLock { n -> Bool in
                    FileHandle.standardOutput.write(Data(message.body + [UInt8(ascii: "\n")]))
                    n += 1
                    return n == limit
                }
                if reached { finish.yield() }
            }
            say("subscribed \(topic)")
            let deadline = timeout?.duration
            let finished = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    for await _ in done { return true }
                    return false
                }
                if let deadline {
                    group.addTask {
                        try? await Task.sleep(for: deadline)
                        return false
                    }
                }
                let first = await group.next() ?? false
                group.cancelAll()
                finish.finish()
                return first
            }
            await subscription.unsubscribe()
            return finished
        }
        if !finished { throw CLIError("timed out waiting for messages on \(topic)", .deadline) }
    }
}

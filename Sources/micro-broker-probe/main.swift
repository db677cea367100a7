// micro-broker-probe: subscribes or publishes with the embedded broker, through the registry the environment
// names (LocalRegistry: $MICRO_REGISTRY_DIR, else the machine's default directory). The second process of the
// broker tests.
//
// usage: micro-broker-probe subscribe <topic> <count> [--queue <group>] [--timeout <seconds>]
//          prints "subscribed <id> <address>", then each message's body on its own line; exits 0 after <count>
//          messages, 3 when the timeout (default 60 s) passes first.
//        micro-broker-probe publish <topic> <body> [n] [--concurrency c]
//          publishes n messages (default 1): the body itself when n is 1, else "<body>-<i>" for i in 0..<n, from
//          c tasks (default 1), each waiting for its acknowledgment before its next; prints "published <n> delivered <d> skipped <s> seconds <t> rate <r>/s". Exits 1 when
//          a publish throws, 4 when some message reached nobody.
//        micro-broker-probe bench <n> [--concurrency c]
//          in this process: n publishes to a subscriber of the publishing broker, then to a subscriber of a
//          second broker (its own listener, over loopback TCP); prints publishes/s of each.
import Foundation
import MicroCore
import MicroBroker
import MicroEventLoop
import MicroRegistry
import Synchronization

func fail(_ message: String, code: Int32 = 2) -> Never {
    FileHandle.standardError.write(Data(("micro-broker-probe: " + message + "\n").utf8))
    exit(code)
}

func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

func value(_ flag: String) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: flag), i + 1 < args.count else { return nil }
    return args[i + 1]
}

let args = CommandLine.arguments
if args.contains("--help") || args.contains("-h") {
    say("usage: micro-broker-probe subscribe <topic> <count> [--queue q] [--timeout s] | publish <topic> <body> [n] [--concurrency c] | bench <n> [--concurrency c]")
    exit(0)
}
guard args.count >= 4 || (args.count >= 3 && args[1] == "bench") else { fail("usage: micro-broker-probe subscribe <topic> <count> [--queue q] | publish <topic> <body> [n]") }
let group = EventLoopGroup(threads: 1)
let broker = EmbeddedBroker(group: group, registry: LocalRegistry())
let topic = args.count > 2 ? args[2] : ""

switch args[1] {
case "subscribe":
    guard let count = Int(args[3]), count > 0 else { fail("bad count \(args[3])") }
    let timeout = Double(value("--timeout") ?? "60") ?? 60
    let (done, finish) = AsyncStream<Void>.makeStream()
    let seen = Mutex(0)
    let subscription: Subscription
    do {
        subscription = try await broker.subscribe(topic, queue: value("--queue")) { message in
            // One line per message, written whole under the lock (handlers may run concurrently).
            let reached = seen.withLock { n -> Bool in
                say(String(decoding: message.body, as: UTF8.self))
                n += 1
                return n == count
            }
            if reached { finish.yield() }
        }
    } catch {
        fail("subscribe: \(error)", code: 1)
    }
    say("subscribed \(subscription.id) \(broker.address ?? "?")")
    let finished = await withTaskGroup(of: Bool.self) { g in
        g.addTask {
            for await _ in done { return true }
            return false
        }
        g.addTask {
            try? await Task.sleep(for: .milliseconds(Int64(timeout * 1000)))
            return false
        }
        let first = await g.next()!
        g.cancelAll()
        finish.finish()
        return first
    }
    await broker.close()
    _ = group.shutdownGracefully()
    exit(finished ? 0 : 3)

case "publish":
    let body = args[3]
    let n = args.count > 4 ? (Int(args[4]) ?? 1) : 1
    let tasks = max(1, min(n, Int(value("--concurrency") ?? "1") ?? 1))
    let start = ContinuousClock.now
    let (delivered, skipped, missed): (Int, Int, Int)
    do {
        (delivered, skipped, missed) = try await withThrowingTaskGroup(of: (Int, Int, Int).self) { g in
            for t in 0..<tasks {
                g.addTask {
                    var counts = (0, 0, 0)
                    for i in stride(from: t, to: n, by: tasks) {
                        let text = n == 1 ? body : "\(body)-\(i)"
                        let r = try await broker.publish(topic, BrokerMessage(body: Array(text.utf8)))
                        counts.0 += r.delivered
                        counts.1 += r.skipped
                        if r.delivered == 0 { counts.2 += 1 }
                    }
                    return counts
                }
            }
            var total = (0, 0, 0)
            for try await c in g { total = (total.0 + c.0, total.1 + c.1, total.2 + c.2) }
            return total
        }
    } catch {
        fail("publish: \(error)", code: 1)
    }
    let elapsed = (ContinuousClock.now - start).components
    let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
    say("published \(n) delivered \(delivered) skipped \(skipped) seconds \(String(format: "%.3f", seconds)) rate \(Int(Double(n) / max(seconds, 1e-9)))/s")
    await broker.close()
    _ = group.shutdownGracefully()
    exit(missed > 0 ? 4 : 0)

case "bench":
    guard let n = Int(args[2]), n > 0 else { fail("bad count \(args[2])") }
    let tasks = max(1, Int(value("--concurrency") ?? "1") ?? 1)
    let other = EmbeddedBroker(group: group, registry: LocalRegistry())
    let topicPrefix = "bench-\(getpid())-"
    for (name, subscriber) in [("same broker", broker), ("second broker over loopback", other)] {
        let topic = topicPrefix + (subscriber === broker ? "same" : "other")
        let sub: Subscription
        do { sub = try await subscriber.subscribe(topic) { _ in } } catch { fail("subscribe: \(error)", code: 1) }
        let start = ContinuousClock.now
        do {
            try await withThrowingTaskGroup(of: Void.self) { g in
                for t in 0..<tasks {
                    g.addTask {
                        for _ in stride(from: t, to: n, by: tasks) {
                            let r = try await broker.publish(topic, BrokerMessage(body: Array("payload".utf8)))
                            if r.delivered != 1 { fail("a message reached nobody", code: 4) }
                        }
                    }
                }
                try await g.waitForAll()
            }
        } catch {
            fail("publish: \(error)", code: 1)
        }
        let elapsed = (ContinuousClock.now - start).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        say("\(name): \(n) publishes from \(tasks) task(s) in \(String(format: "%.3f", seconds)) s: \(Int(Double(n) / seconds))/s")
        await sub.unsubscribe()
    }
    await other.close()
    await broker.close()
    _ = group.shutdownGracefully()
    exit(0)

default:
    fail("unknown command \(args[1])")
}

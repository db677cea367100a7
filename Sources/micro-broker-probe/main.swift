// micro-broker-probe: subscribes or publishes with the embedded broker, through the registry the environment
// names (LocalRegistry: $MICRO_REGISTRY_DIR, else the machine's default directory). The second process of the
// broker tests.
//
// usage: micro-broker-probe subscribe <topic> <count> [--queue <group>] [--timeout <seconds>]
//          prints "subscribed <id> <address>", then each message's body on its own line; exits 0 after <count>
//          messages, 3 when the timeout (default 60 s) passes first.
//        micro-broker-probe publish <topic> <body> [n]
//          publishes n messages (default 1): the body itself when n is 1, else "<body>-<i>" for i in 0..<n, one
//          after another; prints "published <n> delivered <d> skipped <s> seconds <t> rate <r>/s". Exits 1 when
//          a publish throws, 4 when some message reached nobody.
import Foundation
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
guard args.count >= 4 else { fail("usage: micro-broker-probe subscribe <topic> <count> [--queue q] | publish <topic> <body> [n]") }
let group = EventLoopGroup(threads: 1)
let broker = EmbeddedBroker(group: group, registry: LocalRegistry())
let topic = args[2]

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
    var delivered = 0
    var skipped = 0
    var missed = 0
    let start = ContinuousClock.now
    do {
        for i in 0..<n {
            let text = n == 1 ? body : "\(body)-\(i)"
            let r = try await broker.publish(topic, BrokerMessage(body: Array(text.utf8)))
            delivered += r.delivered
            skipped += r.skipped
            if r.delivered == 0 { missed += 1 }
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

default:
    fail("unknown command \(args[1])")
}

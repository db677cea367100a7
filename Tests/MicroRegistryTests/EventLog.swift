import MicroCore
import MicroRegistry
import MicroTestSupport
import Synchronization

/// Collects a watcher's events in the background so that tests can wait for them with a deadline.
final class EventLog: Sendable {
    private let events = Mutex<[RegistryEvent]>([])
    private let ended = Mutex<(Bool, String?)>((false, nil))
    let watcher: RegistryWatcher

    init(_ watcher: RegistryWatcher) {
        self.watcher = watcher
        Task { [self] in
            do {
                for try await event in watcher { events.withLock { $0.append(event) } }
                ended.withLock { $0 = (true, nil) }
            } catch {
                ended.withLock { $0 = (true, "\(error)") }
            }
        }
    }

    var all: [RegistryEvent] { events.withLock { $0 } }
    var isEnded: Bool { ended.withLock { $0.0 } }

    /// Waits until an event of `kind` for node `nodeID` arrived.
    func waitFor(_ kind: RegistryEvent.Kind, node nodeID: String, seconds: Double = 5) async -> Bool {
        await eventually(seconds) { self.all.contains { $0.kind == kind && $0.service.nodes.contains { $0.id == nodeID } } }
    }

    func stop() { watcher.stop() }
}

import Foundation
@testable import Metadata
import Synchronization

/// Records what a change stream delivers, in the background, so a test can wait for it.
final class ChangeRecorder: Sendable {
    private struct State {
        var changes: [MetadataChange] = []
        var finished = false
    }

    /// Shared with the consuming task (a Mutex cannot be copied into it).
    private final class Box: Sendable {
        let state = Mutex(State())
    }

    private let box = Box()
    private let task: Task<Void, Never>

    init(_ stream: AsyncStream<MetadataChange>) {
        let box = self.box
        self.task = Task {
            for await change in stream {
                box.state.withLock { $0.changes.append(change) }
            }
            box.state.withLock { $0.finished = true }
        }
    }

    var changes: [MetadataChange] { box.state.withLock { $0.changes } }
    var isFinished: Bool { box.state.withLock { $0.finished } }

    /// Waits until `condition` holds for what arrived, or `timeout` passed; returns what arrived.
    @discardableResult
    func wait(for timeout: Duration = .seconds(2), until condition: ([MetadataChange]) -> Bool) async -> [MetadataChange] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let now = changes
            if condition(now) { return now }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return changes
    }

    /// Waits until every one of `expected` arrived (any order, others allowed in between).
    func waitForAll(_ expected: [MetadataChange], timeout: Duration = .seconds(2)) async -> Bool {
        let arrived = await wait(for: timeout) { changes in expected.allSatisfy(changes.contains) }
        return expected.allSatisfy(arrived.contains)
    }

    /// True once the stream has ended, waiting up to `timeout`.
    func ended(within timeout: Duration = .seconds(2)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if isFinished { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return isFinished
    }

    deinit { task.cancel() }
}

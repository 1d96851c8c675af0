import NIOCore

/// Runs a connection's task on its channel's event loop.
///
/// Without it, a frame crosses threads twice: the event loop reads it and wakes a thread of
/// Swift's global pool to handle it, which then wakes the event loop again to write the
/// answer; the records decoded on one core are merged on another. With the connection's
/// task preferring its own event loop, reading, decoding, applying (actors called from the
/// task run there too) and writing stay on one thread, and the process runs as many busy
/// threads as it has event loops (one per core) instead of twice that.
///
/// Nothing a connection's task does may block: it never did (the guide forbids blocking
/// calls on the global pool as well), and storage runs on its own threads (sqlite-nio's
/// pool, PostgresNIO's event loops).
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        eventLoop.execute { job.runSynchronously(on: executor) }
    }
}

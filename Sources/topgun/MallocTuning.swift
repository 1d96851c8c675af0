#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// glibc's allocator, tuned for a node whose event loops free each other's memory.
///
/// Every write replaces a record that another event loop may have allocated (and the event
/// journal frees the oldest events of every connection), so about half of the node's frees
/// are of memory another thread allocated. glibc's per-thread cache takes at most 7 chunks
/// of a size before a free goes back to the allocating thread's arena under its lock; under
/// load the two event loops then spend their time waking each other on those locks. A
/// cache of 2,048 chunks per size keeps frees and the next allocations on the freeing thread
/// (measured: half the context switches and about 50% more batches per second, BENCHMARKS.md).
///
/// The cache size is a glibc tunable, read only when a process starts: so the process
/// starts itself again, once, with `GLIBC_TUNABLES` extended (same pid, same arguments).
/// `TOPGUN_MALLOC_TUNING=off`, or a `glibc.malloc.tcache_count` already in
/// `GLIBC_TUNABLES`, leaves the allocator as it is.
enum MallocTuning {
    static let tunable = "glibc.malloc.tcache_count=2048"

    static func restartTunedIfNeeded() {
        #if os(Linux) && canImport(Glibc)
        let environment = ProcessInfo.processInfo.environment
        if environment["TOPGUN_MALLOC_TUNING"] == "off" { return }
        let current = environment["GLIBC_TUNABLES"] ?? ""
        if current.contains("glibc.malloc.tcache_count") { return }
        setenv("GLIBC_TUNABLES", current.isEmpty ? tunable : current + ":" + tunable, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only reached when exec failed: run untuned rather than not at all.
        unsetenv("GLIBC_TUNABLES")
        if !current.isEmpty { setenv("GLIBC_TUNABLES", current, 1) }
        #endif
    }
}

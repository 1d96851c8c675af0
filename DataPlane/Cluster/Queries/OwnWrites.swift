import Synchronization
import TopGunCore
import TopGunWire

/// What this node's sessions with live queries wrote lately, so that their own writes do not
/// come back to them as `SERVER_EVENT`s.
///
/// On one node a write's events go to every watcher of the map but its writer. In a cluster
/// the owners send a map's events to the client's node through the session's live-query
/// feeds, and an owner cannot tell which feed's session wrote (the write came from another
/// node, or from this one through the same feed as anybody's). So the client's node notes
/// what each of its sessions writes to a map it watches (map, key, and the record's
/// timestamp or OR tag, unique per write) before the write is applied, and the coordinator
/// drops the one event that matches. A note whose event never comes (the write lost to a
/// newer record, or was refused) is dropped after `capacity` newer ones.
final class OwnWrites: Sendable {
    struct Fingerprint: Hashable, Sendable {
        enum Stamp: Hashable, Sendable {
            case record(Timestamp)
            case tag(String)
        }

        var map: HashedKey
        var key: HashedKey
        var stamp: Stamp

        init?(map: String, key: String, record: LWWRecord?, orRecord: ORMapRecord?, orTag: String?) {
            if let orTag {
                stamp = .tag(orTag)
            } else if let orRecord {
                stamp = .tag(orRecord.tag)
            } else if let record {
                stamp = .record(record.timestamp)
            } else {
                return nil
            }
            self.map = HashedKey(map)
            self.key = HashedKey(key)
        }

        init?(_ op: ClientOp) {
            self.init(map: op.mapName, key: op.key, record: op.record, orRecord: op.orRecord, orTag: op.orTag)
        }

        init?(_ event: ServerEventPayload) {
            self.init(map: event.mapName, key: event.key, record: event.record, orRecord: event.orRecord, orTag: event.orTag)
        }
    }

    private struct Session {
        /// Live queries per watched map.
        var watched: [HashedKey: Int] = [:]
        var notes: Set<Fingerprint> = []
        /// The notes in the order they were made, a ring of `capacity`: the oldest is
        /// overwritten (and forgotten, if still unused) by the next.
        var order: [Fingerprint] = []
        var oldest = 0
    }

    /// The most notes kept per session.
    let capacity: Int
    private let sessions = Mutex<[SessionID: Session]>([:])
    /// Notes held, all sessions together: while none is, events are not looked up.
    private let noted = Atomic<Int>(0)

    init(capacity: Int = 4_096) {
        self.capacity = capacity
    }

    /// `session` runs one more live query on `map` (its writes there are noted from now on).
    func watch(_ session: SessionID, map: String) {
        sessions.withLock { $0[session, default: Session()].watched[HashedKey(map), default: 0] += 1 }
    }

    /// `session` runs one live query fewer on `map`.
    func unwatch(_ session: SessionID, map: String) {
        let dropped = sessions.withLock { sessions -> Int in
            let map = HashedKey(map)
            guard let count = sessions[session]?.watched[map] else { return 0 }
            sessions[session]!.watched[map] = count > 1 ? count - 1 : nil
            guard sessions[session]!.watched.isEmpty else { return 0 }
            return sessions.removeValue(forKey: session)?.notes.count ?? 0
        }
        if dropped != 0 { noted.subtract(dropped, ordering: .relaxed) }
    }

    func sessionEnded(_ session: SessionID) {
        let dropped = sessions.withLock { $0.removeValue(forKey: session)?.notes.count ?? 0 }
        noted.subtract(dropped, ordering: .relaxed)
    }

    /// Notes the ops `session` is about to apply on maps it watches.
    func note(_ ops: [ClientOp], by session: SessionID) {
        record(by: session) { watched in
            ops.compactMap { op in watched[HashedKey(op.mapName)] == nil ? nil : Fingerprint(op) }
        }
    }

    /// Notes the OR-Map entries `session` pushes to `map` (`ORMAP_PUSH_DIFF`), if it watches it.
    func note(_ entries: [ORMapEntry], map: String, by session: SessionID) {
        record(by: session) { watched in
            guard watched[HashedKey(map)] != nil else { return [] }
            return entries.flatMap { entry in
                entry.records.compactMap { Fingerprint(map: map, key: entry.key, record: nil, orRecord: $0, orTag: nil) }
                    + entry.tombstones.compactMap { Fingerprint(map: map, key: entry.key, record: nil, orRecord: nil, orTag: $0) }
            }
        }
    }

    private func record(by session: SessionID, _ fingerprints: ([HashedKey: Int]) -> [Fingerprint]) {
        let added = sessions.withLock { sessions -> Int in
            guard var state = sessions.removeValue(forKey: session) else { return 0 }
            defer { sessions[session] = state }
            let before = state.notes.count
            for fingerprint in fingerprints(state.watched) where state.notes.insert(fingerprint).inserted {
                if state.order.count < capacity {
                    state.order.append(fingerprint)
                } else {
                    state.notes.remove(state.order[state.oldest])
                    state.order[state.oldest] = fingerprint
                    state.oldest = (state.oldest + 1) % capacity
                }
            }
            return state.notes.count - before
        }
        if added != 0 { noted.add(added, ordering: .relaxed) }
    }

    /// Whether any session holds a note: if not, no event needs looking up.
    var hasNotes: Bool { noted.load(ordering: .relaxed) > 0 }

    /// Whether the event `fingerprint` stands for is `session`'s own write (its note is then
    /// used up: a write's event comes once).
    func isOwn(_ fingerprint: Fingerprint, by session: SessionID) -> Bool {
        let own = sessions.withLock { sessions in
            // The order keeps the used note until it is pushed out (then removed again, harmlessly).
            sessions[session]?.notes.isEmpty == false && sessions[session]!.notes.remove(fingerprint) != nil
        }
        if own { noted.subtract(1, ordering: .relaxed) }
        return own
    }
}

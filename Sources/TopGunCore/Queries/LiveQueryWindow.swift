/// The result set of one live query subscription, kept up to date as records change, and
/// the `QUERY_UPDATE` events each change causes.
///
/// The window holds every matching record in query order (``SortOrder``'s rule, ties by
/// key) and shows the first N of them, N = `min(limit, maxResults)` (the same rows a
/// one-shot ``QueryExecutor`` run without cursor returns). Keeping all matches, not just
/// the top N, is what lets a row below the cut be promoted when a visible one leaves.
///
/// Events for one change come leaves first, then enters, then the update (the Rust
/// server's order), so a client applying them in turn never holds more than N rows:
/// * a matching write to a visible row that stays visible: `UPDATE` (even when the value is
///   unchanged; the write happened);
/// * a row that starts matching, or moves into the top N: `ENTER`, plus `LEAVE` for the row
///   it pushes below the cut (displacement);
/// * a visible row that is deleted, stops matching or moves below the cut: `LEAVE`, plus
///   `ENTER` for the row that moves up into the top N (promotion).
///
/// Grouped queries (`groupBy`/`aggregations`) are not windowed: the window treats rows as
/// records; rerun the executor for those.
public struct LiveQueryWindow: Sendable {
    public let query: Query
    /// How many rows are visible at most.
    public let visibleLimit: Int

    private let ordering: RecordOrdering
    private let auth: DataValue?
    private var rows: [Row] = []
    /// Keys compare byte for byte (`HashedKey`), as the client's do.
    private var positionsByKey: [HashedKey: RecordPosition] = [:]

    private struct Row: Sendable {
        var position: RecordPosition
        var value: DataValue
    }

    /// Builds the window over the current records (a `[String: DataValue]` works as is).
    public init(
        query: Query, records: some Sequence<(key: String, value: DataValue)>, auth: DataValue? = nil,
        maxResults: Int = QueryExecutor.defaultMaxResults
    ) {
        self.query = query
        self.visibleLimit = max(0, min(query.limit ?? maxResults, maxResults))
        self.ordering = RecordOrdering(query.sort)
        self.auth = auth
        for (key, value) in records where query.evaluate(key: key, value: value, auth: auth) {
            let position = ordering.position(key: key, value: value)
            if positionsByKey.updateValue(position, forKey: HashedKey(key)) != nil {
                // A key seen twice: the later value wins, as a later write would.
                rows.removeAll { $0.position.key.hasSameUTF8(as: key) }
            }
            rows.append(Row(position: position, value: value))
        }
        let ordering = self.ordering
        rows.sort { ordering.compare($0.position, $1.position) == .less }
    }

    /// The visible rows, in order.
    public var visibleRecords: [QueryRecord] {
        rows.prefix(visibleLimit).map { QueryRecord(key: $0.position.key, value: $0.value) }
    }

    /// How many records match, visible or not.
    public var matchingCount: Int { rows.count }

    /// Whether `key` is among the visible rows.
    public func isVisible(_ key: String) -> Bool {
        guard let position = positionsByKey[HashedKey(key)], let index = index(of: position) else { return false }
        return index < visibleLimit
    }

    /// Applies a write of `key` (`value` nil for a delete or tombstone; a `null` value counts
    /// as a tombstone too) and returns the events it causes, possibly none.
    public mutating func apply(key: String, value: DataValue?) -> [QueryChange] {
        let limit = visibleLimit
        var wasVisible = false
        if let old = positionsByKey.removeValue(forKey: HashedKey(key)), let oldIndex = index(of: old) {
            wasVisible = oldIndex < limit
            rows.remove(at: oldIndex)
        }
        var isVisible = false
        if let value, query.evaluate(key: key, value: value, auth: auth) {
            let position = ordering.position(key: key, value: value)
            let newIndex = insertionIndex(for: position)
            rows.insert(Row(position: position, value: value), at: newIndex)
            positionsByKey[HashedKey(key)] = position
            isVisible = newIndex < limit
        }

        switch (wasVisible, isVisible) {
        case (true, true):
            return [.update(key: key, value: value ?? .null)]
        case (true, false):
            // The row just below the cut moves up (it sat at index `limit` before).
            guard limit > 0, limit - 1 < rows.count else { return [.leave(key: key)] }
            let promoted = rows[limit - 1]
            return [.leave(key: key), .enter(key: promoted.position.key, value: promoted.value)]
        case (false, true):
            // The last visible row is pushed to index `limit`.
            guard limit < rows.count else { return [.enter(key: key, value: value ?? .null)] }
            let displaced = rows[limit]
            return [.leave(key: displaced.position.key), .enter(key: key, value: value ?? .null)]
        case (false, false):
            return []
        }
    }

    /// Index of the row at exactly `position` (positions are unique: they include the key).
    private func index(of position: RecordPosition) -> Int? {
        let index = insertionIndex(for: position)
        guard index < rows.count, rows[index].position.key.hasSameUTF8(as: position.key) else { return nil }
        return index
    }

    /// First index whose row does not sort before `position`.
    private func insertionIndex(for position: RecordPosition) -> Int {
        var low = 0
        var high = rows.count
        while low < high {
            let mid = (low + high) / 2
            if ordering.compare(rows[mid].position, position) == .less { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

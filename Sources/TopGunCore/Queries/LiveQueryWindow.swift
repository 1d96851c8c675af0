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
///
/// Values: by default each row keeps its value. A window built with `keepsValues: false`
/// keeps only each row's position (its key and sort values), and reads values through the
/// `lookup` its callers pass (the map's current value): a server holds one window per live
/// query, and a copy of every matching value in each would make a query's memory grow with
/// the size of the data rather than with its number of keys.
public struct LiveQueryWindow: Sendable {
    public let query: Query
    /// How many rows are visible at most.
    public let visibleLimit: Int

    private let ordering: RecordOrdering
    private let auth: DataValue?
    /// Every matching row's position, in query order.
    private var rows: [RecordPosition] = []
    /// Each row's position by key, for sorted queries (a row's position depends on its value).
    /// Without sort fields a position is its key alone, found by binary search: no dictionary.
    /// Keys compare byte for byte (`HashedKey`), as the client's do.
    private var positionsByKey: [HashedKey: RecordPosition] = [:]
    /// The rows' values, when the window keeps them.
    private var keptValues: [HashedKey: DataValue] = [:]
    /// While the first result is delivered in pages: the last row sent so far. Rows after it
    /// (in query order) have not reached the subscriber; their changes are not reported (the
    /// next page brings their value as it is then), so a subscriber never sees a `LEAVE` or
    /// `UPDATE` for a row it was never sent. Nil once everything was sent.
    private var deliveredThrough: RecordPosition?
    /// Rows the subscriber was sent that have since moved after `deliveredThrough` (a write
    /// changed their sort value): it still holds them, so their changes are reported.
    private var sentAhead = Set<HashedKey>()

    private let keepsValues: Bool
    private var isSorted: Bool { !ordering.fields.isEmpty }

    /// A row's value as callers see it: kept, or looked up.
    public typealias ValueLookup = (String) -> DataValue?

    /// Builds the window over the current records (a `[String: DataValue]` works as is).
    public init(
        query: Query, records: some Sequence<(key: String, value: DataValue)>, auth: DataValue? = nil,
        maxResults: Int = QueryExecutor.defaultMaxResults, keepsValues: Bool = true
    ) {
        self.query = query
        self.visibleLimit = max(0, min(query.limit ?? maxResults, maxResults))
        self.ordering = RecordOrdering(query.sort)
        self.auth = auth
        self.keepsValues = keepsValues
        var seen = Set<HashedKey>()  // unsorted windows keep no dictionary; duplicates are found here
        for (key, value) in records where query.evaluate(key: key, value: value, auth: auth) {
            let position = ordering.position(key: key, value: value)
            let hashed = HashedKey(key)
            let duplicate = isSorted ? positionsByKey.updateValue(position, forKey: hashed) != nil : !seen.insert(hashed).inserted
            if duplicate {
                // A key seen twice: the later value wins, as a later write would.
                rows.removeAll { $0.key.hasSameUTF8(as: key) }
            }
            rows.append(position)
            if keepsValues { keptValues[hashed] = value }
        }
        let ordering = self.ordering
        rows.sort { ordering.compare($0, $1) == .less }
    }

    /// The visible rows, in order (their kept values; `.null` where none is kept).
    public var visibleRecords: [QueryRecord] {
        rows.prefix(visibleLimit).map { QueryRecord(key: $0.key, value: keptValues[HashedKey($0.key)] ?? .null) }
    }

    /// The keys of the visible rows, in order.
    public var visibleKeys: [String] {
        rows.prefix(visibleLimit).map(\.key)
    }

    /// A row's value: the kept one, else what `lookup` says (`.null` when it says nothing,
    /// which only a caller whose lookup disagrees with the window can see).
    private func value(of row: RecordPosition, lookup: ValueLookup?) -> DataValue {
        (keepsValues ? keptValues[HashedKey(row.key)] : nil) ?? lookup?(row.key) ?? .null
    }

    /// Where `key`'s row sits, if it matches.
    private func position(of key: String) -> RecordPosition? {
        if isSorted { return positionsByKey[HashedKey(key)] }
        let position = RecordPosition(sortValues: [], key: key)
        return index(of: position) == nil ? nil : position
    }

    /// How many records match, visible or not.
    public var matchingCount: Int { rows.count }

    /// Whether `key` is among the visible rows.
    public func isVisible(_ key: String) -> Bool {
        guard let position = position(of: key), let index = index(of: position) else { return false }
        return index < visibleLimit
    }

    /// What the first result says beyond its rows, as a one-shot ``QueryExecutor`` run says
    /// it: `hasMore` when more rows match than are visible, and then, for a query with a
    /// `limit`, the cursor after the last visible row (a client's "load more").
    public func continuation(nowMillis: Int64) -> (hasMore: Bool, nextCursor: String?) {
        let hasMore = rows.count > visibleLimit
        guard hasMore, query.limit != nil, visibleLimit > 0 else { return (hasMore, nil) }
        return (true, QueryCursor(position: rows[visibleLimit - 1], query: query, issuedAtMillis: nowMillis).encoded)
    }

    // MARK: - Delivery in pages

    /// Whether visible rows remain to be sent after the first result (`nextPage`).
    public var isDeliveringPages: Bool { deliveredThrough != nil }

    /// The first result, cut to `maxBytes` of `cost` (at least one row): the rows a
    /// `QUERY_RESP` carries. When visible rows remain, delivery continues with `nextPage`
    /// and, until it ends, changes are reported only for rows already sent.
    public mutating func firstPage(maxBytes: Int, cost: (QueryRecord) -> Int, lookup: ValueLookup? = nil) -> [QueryRecord] {
        let page = visiblePage(from: 0, maxBytes: maxBytes, cost: cost, lookup: lookup)
        deliveredThrough = page.count < min(visibleLimit, rows.count) ? rows[page.count - 1] : nil
        return page
    }

    /// The next visible rows not sent yet, in order, up to `maxBytes` of `cost` (at least one
    /// row), each with the value it has now; empty once everything was sent.
    public mutating func nextPage(maxBytes: Int, cost: (QueryRecord) -> Int, lookup: ValueLookup? = nil) -> [QueryRecord] {
        guard let last = deliveredThrough else { return [] }
        let start = ordering.firstIndex(in: rows, after: last)
        let page = visiblePage(from: start, maxBytes: maxBytes, cost: cost, lookup: lookup)
        let end = start + page.count
        deliveredThrough = end < min(visibleLimit, rows.count) ? rows[end - 1] : nil
        if deliveredThrough == nil {
            sentAhead = []
        } else if !sentAhead.isEmpty {
            for record in page { sentAhead.remove(HashedKey(record.key)) }
        }
        return page
    }

    private func visiblePage(from start: Int, maxBytes: Int, cost: (QueryRecord) -> Int, lookup: ValueLookup?) -> [QueryRecord] {
        let end = min(visibleLimit, rows.count)
        guard start < end else { return [] }
        var page: [QueryRecord] = []
        var bytes = 0
        for index in start..<end {
            let record = QueryRecord(key: rows[index].key, value: value(of: rows[index], lookup: lookup))
            bytes += cost(record)
            if bytes > maxBytes, !page.isEmpty { break }
            page.append(record)
        }
        return page
    }

    /// Whether the subscriber holds `key`'s row, found at `position` (always, once delivery ended).
    private func wasSent(_ key: String, at position: RecordPosition?) -> Bool {
        guard let last = deliveredThrough else { return true }
        if !sentAhead.isEmpty, sentAhead.contains(HashedKey(key)) { return true }
        guard let position else { return false }
        return ordering.compare(position, last) != .greater
    }

    // MARK: - Changes

    /// Applies a write of `key` (`value` nil for a delete or tombstone; a `null` value counts
    /// as a tombstone too) and returns the events it causes, possibly none. `lookup` gives the
    /// value of a row moving up into view, when the window keeps no values.
    public mutating func apply(key: String, value: DataValue?, lookup: ValueLookup? = nil) -> [QueryChange] {
        guard deliveredThrough != nil else { return applyAll(key: key, value: value, lookup: lookup) }
        // While pages are still being sent: only rows the subscriber has may change for it. The
        // written row counts as sent when it sits among the sent rows before or after the write
        // (moving into them it arrives now, moving out of them the subscriber updates its copy;
        // a later page may bring it again, with the same value).
        let hashed = HashedKey(key)
        let wasHeld = wasSent(key, at: position(of: key))
        let changes = applyAll(key: key, value: value, lookup: lookup)
        let after = position(of: key)
        if wasHeld, let after, !wasSent(key, at: after) {
            sentAhead.insert(hashed)
        } else if after == nil || !wasHeld {
            sentAhead.remove(hashed)
        }
        let writtenIsHeld = wasHeld || wasSent(key, at: after)
        return changes.compactMap { change in
            guard change.key.hasSameUTF8(as: key) else {
                return wasSent(change.key, at: position(of: change.key)) ? change : nil
            }
            guard writtenIsHeld else { return nil }
            // Moving among the sent rows from the unsent ones, it is new to the subscriber.
            if !wasHeld, case .update(let key, let value) = change { return .enter(key: key, value: value) }
            return change
        }
    }

    private mutating func applyAll(key: String, value: DataValue?, lookup: ValueLookup?) -> [QueryChange] {
        let limit = visibleLimit
        var wasVisible = false
        var isVisible = false
        let hashed = HashedKey(key)
        let matches = value.map { query.evaluate(key: key, value: $0, auth: auth) } ?? false
        if !isSorted {
            // A row's position is its key: one search finds both where it is and where it goes,
            // and a row that still matches stays where it is.
            let position = RecordPosition(sortValues: [], key: key)
            let index = insertionIndex(for: position)
            let exists = index < rows.count && rows[index].key.hasSameUTF8(as: key)
            switch (exists, matches) {
            case (false, false):
                return []
            case (true, true):
                if keepsValues { keptValues[hashed] = value }
                return index < limit ? [.update(key: key, value: value ?? .null)] : []
            case (false, true):
                rows.insert(position, at: index)
                if keepsValues { keptValues[hashed] = value }
                isVisible = index < limit
            case (true, false):
                rows.remove(at: index)
                if keepsValues { keptValues[hashed] = nil }
                wasVisible = index < limit
            }
        } else {
            if let old = positionsByKey[hashed], let oldIndex = index(of: old) {
                wasVisible = oldIndex < limit
                rows.remove(at: oldIndex)
                positionsByKey[hashed] = nil
                if keepsValues { keptValues[hashed] = nil }
            }
            if let value, matches {
                let position = ordering.position(key: key, value: value)
                let newIndex = insertionIndex(for: position)
                rows.insert(position, at: newIndex)
                positionsByKey[hashed] = position
                if keepsValues { keptValues[hashed] = value }
                isVisible = newIndex < limit
            }
        }

        switch (wasVisible, isVisible) {
        case (true, true):
            return [.update(key: key, value: value ?? .null)]
        case (true, false):
            // The row just below the cut moves up (it sat at index `limit` before).
            guard limit > 0, limit - 1 < rows.count else { return [.leave(key: key)] }
            let promoted = rows[limit - 1]
            return [.leave(key: key), .enter(key: promoted.key, value: self.value(of: promoted, lookup: lookup))]
        case (false, true):
            // The last visible row is pushed to index `limit`.
            guard limit < rows.count else { return [.enter(key: key, value: value ?? .null)] }
            let displaced = rows[limit]
            return [.leave(key: displaced.key), .enter(key: key, value: value ?? .null)]
        case (false, false):
            return []
        }
    }

    /// Index of the row at exactly `position` (positions are unique: they include the key).
    private func index(of position: RecordPosition) -> Int? {
        let index = insertionIndex(for: position)
        guard index < rows.count, rows[index].key.hasSameUTF8(as: position.key) else { return nil }
        return index
    }

    /// First index whose row does not sort before `position`.
    private func insertionIndex(for position: RecordPosition) -> Int {
        var low = 0
        var high = rows.count
        while low < high {
            let mid = (low + high) / 2
            if ordering.compare(rows[mid], position) == .less { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

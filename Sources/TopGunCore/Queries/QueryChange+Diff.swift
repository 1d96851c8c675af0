extension QueryChange {
    /// The changes that turn a subscriber's result `old` into `new`: a `LEAVE` for each row
    /// only `old` has, an `ENTER` for each row only `new` has, an `UPDATE` for each row both
    /// have with different values; leaves first, then enters, then updates (so a client never
    /// holds more rows than the larger of the two results). Keys compare byte for byte.
    public static func diff(from old: [QueryRecord], to new: [QueryRecord]) -> [QueryChange] {
        var before: [HashedKey: DataValue] = [:]
        for record in old { before[HashedKey(record.key)] = record.value }
        var after = Set<HashedKey>()
        var enters: [QueryChange] = []
        var updates: [QueryChange] = []
        for record in new {
            let key = HashedKey(record.key)
            after.insert(key)
            switch before[key] {
            case nil: enters.append(.enter(key: record.key, value: record.value))
            case let value? where value != record.value: updates.append(.update(key: record.key, value: record.value))
            default: break
            }
        }
        let leaves = old.filter { !after.contains(HashedKey($0.key)) }.map { QueryChange.leave(key: $0.key) }
        return leaves + enters + updates
    }
}

/// A hash table from string keys to values, laid out for maps of millions of keys.
///
/// Entries are dense (insertion order, a removal moves the last entry into the hole), each
/// holding its key's hash and first 32 UTF-8 bytes inline. Buckets, probed linearly, hold an
/// entry's position and the top 32 bits of its hash. A lookup therefore reads a few
/// neighbouring buckets (a small array, mostly cached), then the one entry whose hash bits
/// match, and compares its key without leaving that entry for keys of up to 32 bytes; only
/// longer keys are compared through their string storage. A Swift `Dictionary` of strings
/// reads its keys array, then the key's heap storage, then its values array: three cache
/// misses per write into a large map, where this takes one.
///
/// Value semantics through its arrays (copy on write).
public struct KeyTable<Value> {
    public struct Entry {
        public let key: HashedKey
        /// The first 32 UTF-8 bytes of the key, zero-padded.
        let head: KeyHead
        public var value: Value
    }

    public private(set) var entries: [Entry] = []
    /// 0 for an empty bucket; otherwise the top 32 bits of the hash, then entry index + 1.
    private var buckets: [UInt64] = []

    public init() {}

    public var count: Int { entries.count }

    /// Where `key` is, or where it would go.
    public enum Position {
        case found(entry: Int)
        case absent(bucket: Int)
    }

    /// Looks `key` (whose `HashedKey` hash is `hash`) up; `head` is `KeyHead(key)`, computed
    /// once by the caller. The key is read in place: a lookup copies no string.
    public func position(of key: borrowing String, hash: Int, head: KeyHead) -> Position {
        guard !buckets.isEmpty else { return .absent(bucket: -1) }
        return buckets.withUnsafeBufferPointer { buckets in
            let mask = buckets.count - 1
            let tag = Self.tag(hash)
            var bucket = hash & mask
            while true {
                let word = buckets[bucket]
                if word == 0 { return .absent(bucket: bucket) }
                if word >> 32 == tag {
                    let index = Int(truncatingIfNeeded: word & 0xffff_ffff) - 1
                    if entries.withUnsafeBufferPointer({ Self.matches($0.baseAddress! + index, key, hash, head) }) {
                        return .found(entry: index)
                    }
                }
                bucket = (bucket + 1) & mask
            }
        }
    }

    public func position(of key: HashedKey, head: KeyHead) -> Position { position(of: key.string, hash: key.hash, head: head) }

    public func position(of key: HashedKey) -> Position { position(of: key.string, hash: key.hash, head: KeyHead(key.string)) }

    static func tag(_ hash: Int) -> UInt64 { UInt64(UInt(bitPattern: hash)) >> 32 }

    static func matches(_ entry: UnsafePointer<Entry>, _ key: borrowing String, _ hash: Int, _ head: KeyHead) -> Bool {
        guard entry.pointee.key.hash == hash, entry.pointee.head == head else { return false }
        // Up to 32 bytes the head is the whole key (the length is in the head too).
        return head.isWholeKey || entry.pointee.key.string.hasSameUTF8(as: key)
    }

    public subscript(key: HashedKey) -> Value? {
        guard case .found(let index) = position(of: key) else { return nil }
        return entries[index].value
    }

    /// The value at an entry position, read or changed in place.
    public subscript(entry index: Int) -> Value {
        get { entries[index].value }
        _modify { yield &entries[index].value }
    }

    /// Adds `key` (known to be absent: `position` said so, and the table has not changed
    /// since) with its value. Returns the new entry's position.
    @discardableResult
    public mutating func insert(_ key: HashedKey, head: KeyHead, value: Value, at position: Position) -> Int {
        var bucket: Int
        if case .absent(let at) = position, at >= 0, (entries.count + 1) * 4 <= buckets.count * 3 {
            bucket = at
        } else {
            grow(toHold: entries.count + 1)
            bucket = Self.emptyBucket(for: key.hash, in: buckets)
        }
        entries.append(Entry(key: key, head: head, value: value))
        buckets[bucket] = Self.tag(key.hash) << 32 | UInt64(entries.count)
        return entries.count - 1
    }

    /// Removes `key`; returns its value.
    @discardableResult
    public mutating func removeValue(forKey key: HashedKey) -> Value? {
        guard case .found(let index) = position(of: key) else { return nil }
        removeBucket(pointingTo: index, hash: key.hash)
        let last = entries.count - 1
        if index != last {
            // The last entry moves into the hole: re-point its bucket.
            let moved = entries[last].key.hash
            let bucket = bucketIndex(pointingTo: last, hash: moved)
            buckets[bucket] = Self.tag(moved) << 32 | UInt64(index + 1)
            entries.swapAt(index, last)
        }
        return entries.removeLast().value
    }

    // MARK: - Buckets

    private func bucketIndex(pointingTo index: Int, hash: Int) -> Int {
        let mask = buckets.count - 1
        var bucket = hash & mask
        while buckets[bucket] & 0xffff_ffff != UInt64(index + 1) { bucket = (bucket + 1) & mask }
        return bucket
    }

    /// Empties the bucket of entry `index` and shifts later buckets of the same run back, so
    /// no probe ever stops early at the gap (linear probing without tombstones).
    private mutating func removeBucket(pointingTo index: Int, hash: Int) {
        let mask = buckets.count - 1
        var gap = bucketIndex(pointingTo: index, hash: hash)
        var next = (gap + 1) & mask
        while buckets[next] != 0 {
            let entry = Int(truncatingIfNeeded: buckets[next] & 0xffff_ffff) - 1
            let home = entries[entry].key.hash & mask
            // The bucket may move back to the gap when its home is not in (gap, next].
            let distanceToNext = (next - home) & mask
            let distanceToGap = (gap - home) & mask
            if distanceToGap < distanceToNext {
                buckets[gap] = buckets[next]
                gap = next
            }
            next = (next + 1) & mask
        }
        buckets[gap] = 0
    }

    private static func emptyBucket(for hash: Int, in buckets: [UInt64]) -> Int {
        let mask = buckets.count - 1
        var bucket = hash & mask
        while buckets[bucket] != 0 { bucket = (bucket + 1) & mask }
        return bucket
    }

    /// Doubles the buckets until `count` entries fit under a load of 3/4, re-placing every
    /// entry by its stored hash (no key is hashed again).
    private mutating func grow(toHold count: Int) {
        var capacity = max(16, buckets.count)
        while count * 4 > capacity * 3 { capacity *= 2 }
        guard capacity != buckets.count else { return }
        var fresh = [UInt64](repeating: 0, count: capacity)
        // Each entry's hash is read in place: iterating the entries would copy each one,
        // retaining and releasing its key and value, for every entry of the table.
        entries.withUnsafeBufferPointer { entries in
            guard let base = entries.baseAddress else { return }
            for index in entries.indices {
                let hash = (base + index).pointee.key.hash
                let bucket = Self.emptyBucket(for: hash, in: fresh)
                fresh[bucket] = Self.tag(hash) << 32 | UInt64(index + 1)
            }
        }
        buckets = fresh
    }
}

extension KeyTable: Sendable where Value: Sendable {}
extension KeyTable.Entry: Sendable where Value: Sendable {}

/// The first 32 UTF-8 bytes of a key, zero-padded, and its length (capped): equal heads of
/// keys up to 32 bytes mean equal keys.
public struct KeyHead: Equatable, Sendable {
    var w0: UInt64 = 0
    var w1: UInt64 = 0
    var w2: UInt64 = 0
    var w3: UInt64 = 0
    /// The key's length in bytes, up to 33 (33 meaning longer than the head).
    var length: UInt8 = 0

    public var isWholeKey: Bool { length <= 32 }

    public init(_ key: borrowing String) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var count = 0
        // Read in place (no copy of the string); a string without contiguous UTF-8 (bridged
        // ones, which this server never decodes) is read unit by unit.
        let read: Void? = key.utf8.withContiguousStorageIfAvailable { bytes in
            count = bytes.count
            withUnsafeMutableBytes(of: &words) { raw in
                raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[0..<min(bytes.count, 32)]))
            }
        }
        if read == nil {
            count = 0
            withUnsafeMutableBytes(of: &words) { raw in
                for byte in key.utf8 {
                    if count < 32 { raw[count] = byte }
                    count += 1
                }
            }
        }
        length = UInt8(min(count, 33))
        (w0, w1, w2, w3) = words
    }
}

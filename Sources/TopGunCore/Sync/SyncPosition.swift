/// How far a client's HTTP sync of one map has got (protocol.md §7.1): per partition, the
/// sequence of the last change it was sent (a server's `PartitionSequences`). The server
/// hands it out inside `serverSyncTimestamp` and the client sends it back unchanged as its
/// next `lastSyncTimestamp`, so the changes a poll returns are those the server made after
/// the previous poll, in the order it made them, whatever timestamps clients wrote on the
/// records. It survives a partition moving to another node, which continues its sequences.
///
/// On the wire it is a timestamp whose `nodeId` is `~seq1.` and the positions, as base64url
/// of varints: the largest sequence, then per partition (ascending) the gap to the previous
/// partition and the distance below the largest sequence. `millis` is the server's time of the
/// answer (the field must be a timestamp for the client's schema; the client only stores it).
///
/// Other timestamps stay readable: the client's first `{0, 0, ""}` is the start (everything is
/// new), and any other is a legacy position (records whose timestamp is newer are new).
public struct SyncPosition: Sendable, Equatable {
    /// Partition → sequence of the last change sent. A partition absent has had nothing sent:
    /// all its records are new.
    public private(set) var sent: [Int: Int64]
    /// Set for a legacy position: records newer than this timestamp are new.
    public private(set) var legacyTimestamp: Timestamp?

    static let marker = "~seq1."

    /// The start: nothing sent yet.
    public static let start = SyncPosition(sent: [:])

    public init(sent: [Int: Int64]) {
        self.sent = sent
        self.legacyTimestamp = nil
    }

    /// Reads a `lastSyncTimestamp`. A position this server cannot read (damaged, or from a
    /// newer format) counts as the start: the client is sent everything again, which merging
    /// makes harmless.
    public init(timestamp: Timestamp) {
        sent = [:]
        legacyTimestamp = nil
        if timestamp.nodeId.hasPrefix(Self.marker) {
            if let decoded = Self.decode(String(timestamp.nodeId.dropFirst(Self.marker.count))) { sent = decoded }
        } else if timestamp.millis != 0 || timestamp.counter != 0 || !timestamp.nodeId.isEmpty {
            legacyTimestamp = timestamp
        }
    }

    /// Whether a record is new to the client: changed after its position.
    public func isNew(partition: Int, sequence: Int64, timestamp: Timestamp) -> Bool {
        if let legacyTimestamp { return timestamp > legacyTimestamp }
        guard let last = sent[partition] else { return true }
        return sequence > last
    }

    /// The position once a change of `partition` with `sequence` was sent.
    public mutating func advance(partition: Int, to sequence: Int64) {
        if sequence > sent[partition] ?? -1 { sent[partition] = sequence }
    }

    /// Ends a legacy position: from now on the client holds the sequences in `sent`.
    /// `allPartitions` says which partitions' records were all looked at (every record in them
    /// is either sent or older than the legacy timestamp): their largest sequences count as
    /// sent, so the older records are not sent again.
    public mutating func leaveLegacy(largestSequences: [Int: Int64]) {
        guard legacyTimestamp != nil else { return }
        legacyTimestamp = nil
        for (partition, sequence) in largestSequences { advance(partition: partition, to: sequence) }
    }

    /// The position as the timestamp the client is given.
    public func timestamp(nowMillis: Int64) -> Timestamp {
        if let legacyTimestamp { return legacyTimestamp }
        return Timestamp(millis: nowMillis, counter: 0, nodeId: Self.marker + Self.encode(sent))
    }

    // MARK: - Encoding

    static func encode(_ sent: [Int: Int64]) -> String {
        var bytes: [UInt8] = []
        let largest = sent.values.max() ?? 0
        appendVarint(UInt64(bitPattern: largest), to: &bytes)
        var previous = -1
        for partition in sent.keys.sorted() {
            appendVarint(UInt64(partition - previous), to: &bytes)
            appendVarint(UInt64(bitPattern: largest &- sent[partition]!), to: &bytes)
            previous = partition
        }
        return Base64URL.encode(bytes)
    }

    static func decode(_ text: String) -> [Int: Int64]? {
        // 271 partitions of at most two 10-byte varints each, and the largest sequence.
        guard text.utf8.count <= 8_000, let bytes = Base64URL.decode(text) else { return nil }
        var index = 0
        guard let largest = readVarint(bytes, &index) else { return nil }
        var sent: [Int: Int64] = [:]
        var partition = -1
        while index < bytes.count {
            guard let gap = readVarint(bytes, &index), let below = readVarint(bytes, &index), gap > 0,
                gap <= UInt64(PartitionFunction.partitionCount)
            else { return nil }
            partition += Int(gap)
            guard partition < PartitionFunction.partitionCount else { return nil }
            let sequence = Int64(bitPattern: largest) &- Int64(bitPattern: below)
            guard sequence >= 0 else { return nil }
            sent[partition] = sequence
        }
        return sent
    }

    private static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    private static func readVarint(_ bytes: [UInt8], _ index: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.count, shift < 64 {
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }
}

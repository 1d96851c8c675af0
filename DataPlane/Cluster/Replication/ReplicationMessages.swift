import TopGunCore
import TopGunWire

extension ClusterMessageType {
    /// An owner's changes (or snapshot) for a backup: `ReplicaBatch` → empty, or a failure
    /// when the backup follows a newer owner of one of its partitions.
    static let replicate = "replicate"
}

/// `replicate`: rows of some partitions the sender owns, each under its epoch.
struct ReplicaBatch {
    struct Part {
        var partition: Int
        var epoch: Int64
        var rows: [StoredRecord]
        /// These rows end the partition's snapshot: the copy is complete.
        var completesSnapshot: Bool
    }

    var batch: UInt64
    /// Every change of the sender up to this batch is committed to storage.
    var persistedThrough: UInt64
    var parts: [Part]
    /// The sender's batch numbering (`Replicator.stream`: one per run): `persistedThrough`
    /// speaks of this numbering only. Empty from a sender that does not say.
    var stream: String

    init(batch: UInt64, persistedThrough: UInt64, parts: [Part], stream: String = "") {
        self.batch = batch
        self.persistedThrough = persistedThrough
        self.parts = parts
        self.stream = stream
    }

    func encoded() -> [UInt8] {
        let parts: [DataValue] = parts.map { part in
            .object([
                "p": .int(Int64(part.partition)), "e": .int(part.epoch), "rows": .array(part.rows.map(ClusterCodec.record)),
                "done": .bool(part.completesSnapshot),
            ])
        }
        return ClusterCodec.encode([
            "batch": .uint(batch), "persisted": .uint(persistedThrough), "parts": .array(parts), "stream": .string(stream),
        ])
    }

    init(decoding bytes: [UInt8]) throws {
        let object = try ClusterCodec.decode(bytes)
        batch = try Self.unsigned(object["batch"])
        persistedThrough = try Self.unsigned(object["persisted"])
        stream = try object.optional("stream") ?? ""
        let values: [DataValue] = try object.required("parts")
        parts = try values.map { value in
            let part = try DataObject(wire: value)
            let rows: [DataValue] = try part.required("rows")
            let partition: Int = try part.required("p")
            guard (0..<PartitionFunction.partitionCount).contains(partition) else { throw ClusterMessageError("partition out of range") }
            return Part(
                partition: partition, epoch: try part.required("e"), rows: try rows.map(ClusterCodec.record(from:)),
                completesSnapshot: try part.required("done"))
        }
    }

    private static func unsigned(_ value: DataValue?) throws -> UInt64 {
        switch value {
        case .uint(let number): return number
        case .int(let number) where number >= 0: return UInt64(number)
        default: throw ClusterMessageError("a batch number is not an unsigned integer")
        }
    }
}

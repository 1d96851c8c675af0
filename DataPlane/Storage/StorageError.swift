/// Why a storage operation failed, as a value the write-behind queue and the node can act on.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The database cannot be reached, or the connection broke: worth retrying.
    case unavailable(String)
    /// The database refused the operation (a constraint, a type error): retrying the same
    /// batch will fail the same way.
    case rejected(String)
    /// A record breaks a storage limit (`StoredRecord.validate()`); nothing was written.
    case invalidRecord(String)
    /// A stored payload cannot be decoded into a `StoredValue`; `row` names it when known.
    case corruptPayload(row: String?, reason: String)
    /// The storage was shut down.
    case closed

    public var description: String {
        switch self {
        case .unavailable(let why): return "storage unavailable: \(why)"
        case .rejected(let why): return "storage rejected the operation: \(why)"
        case .invalidRecord(let why): return "invalid record: \(why)"
        case .corruptPayload(let row?, let why): return "corrupt payload in \(row): \(why)"
        case .corruptPayload(nil, let why): return "corrupt payload: \(why)"
        case .closed: return "storage is shut down"
        }
    }
}

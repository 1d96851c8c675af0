import PostgresNIO

/// Maps postgres-nio errors to `MetadataError`, and describes them (PSQLError's own
/// description deliberately hides everything).
enum PostgresErrors {
    static func map(_ error: any Error) -> any Error {
        if error is MetadataError || error is MigrationError || error is CancellationError { return error }
        if let transaction = error as? PostgresTransactionError {
            return map(transaction.closureError ?? transaction.beginError ?? transaction.commitError ?? error)
        }
        if let deadline = error as? DeadlineExceeded {
            return MetadataError.unavailable("PostgreSQL gave \(deadline)")
        }
        guard let psql = error as? PSQLError else {
            return MetadataError.unavailable(describe(error))
        }
        if psql.code == .server, let state = psql.serverInfo?[.sqlState] {
            switch state {
            case "23505": return MetadataError.conflict(describe(psql))  // unique_violation
            case "23503": return MetadataError.notFound(describe(psql))  // foreign_key_violation
            case _ where state.hasPrefix("22"), "23514", "23502":       // data exception, check, not null
                return MetadataError.invalid(describe(psql))
            default: break
            }
        }
        return MetadataError.unavailable(describe(psql))
    }

    static func describe(_ error: any Error) -> String {
        if let metadata = error as? MetadataError { return "\(metadata)" }
        guard let psql = error as? PSQLError else { return String(describing: error) }
        if let message = psql.serverInfo?[.message] {
            let state = psql.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return message + state
        }
        if let underlying = psql.underlying { return "\(psql.code): \(underlying)" }
        return "\(psql.code)"
    }
}

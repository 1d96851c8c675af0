import SQLiteNIO

/// Maps sqlite-nio errors to `MetadataError`.
enum SQLiteErrors {
    static func map(_ error: any Error) -> any Error {
        if error is MetadataError || error is MigrationError || error is CancellationError { return error }
        guard let error = error as? SQLiteError else {
            return MetadataError.unavailable(String(describing: error))
        }
        switch error.reason {
        case .constraintUniqueFailed, .constraintPrimaryKeyFailed:
            return MetadataError.conflict(error.message)
        case .constraintForeignKeyFailed:
            return MetadataError.notFound(error.message)
        case .constraint, .constraintCheckFailed, .constraintNotNullFailed, .tooBig, .mismatch, .range:
            return MetadataError.invalid(error.message)
        default:
            return MetadataError.unavailable("SQLite: \(error.message)")
        }
    }
}

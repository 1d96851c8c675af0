import Testing

/// Every suite of the storage layer nests in here, so that `swift test --filter Storage`
/// runs exactly them.
@Suite("Storage")
enum StorageTests {}

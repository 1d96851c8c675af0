import Foundation

/// Where a page of a list ended: lists are ordered by (time, id), and the next page starts
/// after this position. The control plane turns it into an opaque cursor.
public struct ListPosition: Sendable, Equatable, Hashable, Codable {
    public var time: Date
    public var id: String

    public init(time: Date, id: String) {
        self.time = time
        self.id = id
    }
}

/// A page of a list, and the position after its last item if more may follow.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    /// Nil on the last page.
    public var next: ListPosition?

    public init(items: [Item], next: ListPosition?) {
        self.items = items
        self.next = next
    }
}

extension Page: Equatable where Item: Equatable {}

import TopGunCore
import TopGunWire

extension ChangeType {
    /// The `changeType` a `QUERY_UPDATE` carries for a window's change.
    init(_ change: QueryChange) {
        switch change {
        case .enter: self = .enter
        case .update: self = .update
        case .leave: self = .leave
        }
    }
}

extension QueryUpdate {
    /// The `QUERY_UPDATE` of a window's change, its value projected on `fields` (a leave's is null).
    init(queryId: String, change: QueryChange, fields: [String]?) {
        let value = change.value.map { value in fields.map { FieldProjection.project(value, fields: $0) } ?? value }
        self.init(queryId: queryId, key: change.key, value: value ?? .null, changeType: ChangeType(change))
    }
}

import TopGunCore

/// `SQL_QUERY` (client → server): a SQL statement over the maps.
public struct SQLQuery: MessageBody {
    public static let type = "SQL_QUERY"
    public static let envelope = MessageEnvelope.payload
    public var sql: String
    public var queryId: String

    public init(sql: String, queryId: String) {
        self.sql = sql
        self.queryId = queryId
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        sql = try f.required("sql")
        queryId = try f.required("queryId")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("sql", sql)
        f.append("queryId", queryId)
        return f
    }
}

/// `SQL_QUERY_RESP` (server → client): the columns and rows of a `SQL_QUERY`, or an error
/// (`code` e.g. `FEATURE_DISABLED`).
public struct SQLQueryResp: MessageBody {
    public static let type = "SQL_QUERY_RESP"
    public static let envelope = MessageEnvelope.payload
    public var queryId: String
    public var columns: [String]
    public var rows: [[DataValue]]
    public var error: String?
    public var code: String?

    public init(queryId: String, columns: [String], rows: [[DataValue]], error: String? = nil, code: String? = nil) {
        self.queryId = queryId
        self.columns = columns
        self.rows = rows
        self.error = error
        self.code = code
    }

    public init(wireFields f: DataObject) throws(WireDecodingError) {
        queryId = try f.required("queryId")
        columns = try f.required("columns")
        rows = try f.required("rows")
        error = try f.optional("error")
        code = try f.optional("code")
    }

    public var wireFields: DataObject {
        var f = DataObject()
        f.append("queryId", queryId)
        f.append("columns", columns)
        f.append("rows", rows)
        f.append("error", error)
        f.append("code", code)
        return f
    }
}

import TopGunWire

/// Sends an `ERROR` and counts it (`topgun_errors_total` by code): every handler answers a
/// bad request this way.
struct ErrorReplies: Sendable {
    let metrics: DataPlaneMetrics

    func send(_ error: ErrorMessage, to out: SessionOutbound) {
        metrics.error(code: error.code)
        out.send(.errorMessage(error))
    }

    func badRequest(_ message: String, field: String, to out: SessionOutbound) {
        send(.make(.badRequest, message, details: ["field": .string(field)]), to: out)
    }

    func refused(_ refusal: QuotaRefusal, to out: SessionOutbound) {
        send(refusal.errorMessage, to: out)
    }

    /// Names of locks and counters: 1 to 256 bytes.
    func validName(_ kind: String, _ name: String, to out: SessionOutbound) -> Bool {
        guard (1...256).contains(name.utf8.count) else {
            badRequest("\(kind) names are 1-256 bytes", field: "name", to: out)
            return false
        }
        return true
    }
}

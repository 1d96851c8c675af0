import Foundation
import Tenancy

/// The JSON payload of a PostgreSQL `NOTIFY` on `PostgresMetadataStore.notificationChannel`
/// (`topgun_metadata`), sent in the same transaction as the change it announces:
///
///     {"kind":"tenant","tenant":"tn_..."}
///     {"kind":"signing_key","tenant":"tn_...","kid":"key_..."}
///     {"kind":"quota","tenant":"tn_..."}
///     {"kind":"schema","tenant":"tn_...","map":"orders"}
///
/// It names what changed, never the new state: a listener re-reads. Unknown kinds (from a newer
/// control plane) and unreadable payloads are delivered as `.resynchronize`.
public struct MetadataNotification: Codable, Sendable, Equatable {
    public var kind: String
    public var tenant: String
    public var kid: String?
    public var map: String?

    public init(kind: String, tenant: String, kid: String? = nil, map: String? = nil) {
        self.kind = kind
        self.tenant = tenant
        self.kid = kid
        self.map = map
    }

    public init?(_ change: MetadataChange) {
        switch change {
        case .tenant(let id): self.init(kind: "tenant", tenant: id.rawValue)
        case .signingKey(let kid, let tenant): self.init(kind: "signing_key", tenant: tenant.rawValue, kid: kid)
        case .quota(let tenant): self.init(kind: "quota", tenant: tenant.rawValue)
        case .schema(let tenant, let map): self.init(kind: "schema", tenant: tenant.rawValue, map: map)
        case .resynchronize: return nil
        }
    }

    /// The change this payload announces.
    public var change: MetadataChange {
        switch (kind, kid, map) {
        case ("tenant", _, _): .tenant(TenantID(tenant))
        case ("signing_key", let kid?, _): .signingKey(kid: kid, tenant: TenantID(tenant))
        case ("quota", _, _): .quota(TenantID(tenant))
        case ("schema", _, let map?): .schema(tenant: TenantID(tenant), map: map)
        default: .resynchronize
        }
    }

    /// The payload text (keys sorted, so equal changes give equal text).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads a payload; nil if it is not one.
    public static func parse(_ payload: String) -> MetadataNotification? {
        try? JSONDecoder().decode(MetadataNotification.self, from: Data(payload.utf8))
    }
}

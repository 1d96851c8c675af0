import TopGunWire
import Logging
import Metadata
import Tenancy

/// Applies metadata changes to open sessions (design.md §5, issue 5 "live control"): the
/// sessions of a suspended or deleted tenant, and those authenticated with a revoked key, are
/// closed with 1008 and a reason. Changes name what changed, never the new state, so each is
/// re-read from the store; a store that cannot answer leaves sessions open (they are checked
/// again at the next change or resynchronization).
public struct SessionControl: Sendable {
    let metadata: any MetadataStore
    let sessions: SessionRegistry
    let logger: Logger
    /// Purges a deleted tenant's records once its sessions are closed.
    let purger: TenantPurger?

    public init(metadata: any MetadataStore, sessions: SessionRegistry, logger: Logger, purger: TenantPurger? = nil) {
        self.metadata = metadata
        self.sessions = sessions
        self.logger = logger
        self.purger = purger
    }

    public func apply(_ change: MetadataChange) async {
        switch change {
        case .tenant(let id):
            await recheckTenant(id)
        case .signingKey(let kid, _):
            await recheckKey(kid)
        case .resynchronize:
            let contexts = sessions.authenticatedContexts()
            // Tenants with data but no session count too: a deletion may have been missed.
            for tenant in Set(contexts.map(\.tenant)).union(purger?.tenantsInMemory ?? []) { await recheckTenant(tenant) }
            for kid in Set(contexts.map(\.keyId)) { await recheckKey(kid) }
        case .quota, .schema:
            break
        }
    }

    /// What an open session of `tenant` must hear, if anything: nil while the tenant is active.
    func closeReason(for tenant: Tenant?) -> String? {
        guard let tenant else { return "tenant deleted" }
        switch tenant.status {
        case .active: return nil
        case .suspended: return "tenant suspended"
        case .deleted: return "tenant deleted"
        }
    }

    private func recheckTenant(_ id: TenantID) async {
        let tenant: Tenant?
        do {
            tenant = try await metadata.tenant(id: id)
        } catch {
            logger.warning("cannot re-read a changed tenant; its sessions stay open for now", metadata: ["tenant": "\(id)", "error": "\(error)"])
            return
        }
        guard let reason = closeReason(for: tenant) else { return }
        let closed = sessions.close(.policyViolation, reason: reason) { $0.context?.tenant == id }
        if closed > 0 { logger.info("closed sessions of a tenant", metadata: ["tenant": "\(id)", "reason": "\(reason)", "count": "\(closed)"]) }
        // Deleted (or gone from metadata): its records go too, in the background.
        if tenant == nil || tenant?.status == .deleted { purger?.request(id) }
    }

    private func recheckKey(_ kid: String) async {
        let key: SigningKey?
        do {
            key = try await metadata.signingKey(kid: kid)
        } catch {
            logger.warning("cannot re-read a changed signing key; its sessions stay open for now", metadata: ["kid": "\(kid)", "error": "\(error)"])
            return
        }
        guard key?.status != .active else { return }
        let closed = sessions.close(.policyViolation, reason: "signing key revoked") { $0.context?.keyId == kid }
        if closed > 0 { logger.info("closed sessions of a revoked key", metadata: ["kid": "\(kid)", "count": "\(closed)"]) }
    }
}

import TopGunCore

/// base64url (RFC 4648 §5), as JWTs and shown-once secrets use it: TopGunCore's one codec,
/// named here for the modules that see Tenancy rather than TopGunCore.
public typealias Base64URL = TopGunCore.Base64URL

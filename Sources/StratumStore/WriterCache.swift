import GRDB
import Synchronization

/// What ingestion reads on every event — which profile an identifier belongs
/// to, and the profile itself — kept in memory for the writer connection, so
/// the single writer does not look them up in SQLite each time.
///
/// It is only ever right about committed data, because:
/// - every ingestion write of a profile or identifier goes through
///   `SQLiteTransaction`, which updates it;
/// - a transaction or savepoint that fails clears it (what it cached may
///   have rolled back);
/// - another connection's commit (`stratum import` in another process)
///   changes `PRAGMA data_version`, checked at the start of each write;
/// - the other writers of profiles on this connection (traits and RFM) clear
///   the cached profiles after each of their transactions.
/// Readers never use it.
final class WriterCache: Sendable {
    struct IdentifierKey: Hashable {
        var tenant: String
        var type: String
        var hash: String
    }

    struct ProfileKey: Hashable {
        var tenant: String
        var id: String
    }

    struct State {
        var dataVersion: Int64?
        var identifiers: [IdentifierKey: String] = [:]
        var profiles: [ProfileKey: ProfileRecord] = [:]
    }

    /// Past these sizes the cache starts over rather than grow without bound.
    static let maximumIdentifiers = 400_000
    static let maximumProfiles = 100_000

    private let state = Mutex(State())

    /// Drops everything if another connection committed since the last write.
    func synchronize(with db: Database) throws {
        let version = try Int64.fetchOne(db, sql: "PRAGMA data_version")
        state.withLock { state in
            if state.dataVersion != version {
                state = State(dataVersion: version)
            }
        }
    }

    func clear() {
        state.withLock { state in state = State(dataVersion: nil) }
    }

    func clearProfiles() {
        state.withLock { $0.profiles = [:] }
    }

    func profile(tenant: String, id: String) -> ProfileRecord? {
        state.withLock { $0.profiles[ProfileKey(tenant: tenant, id: id)] }
    }

    func store(_ profile: ProfileRecord) {
        state.withLock { state in
            if state.profiles.count >= Self.maximumProfiles { state.profiles = [:] }
            state.profiles[ProfileKey(tenant: profile.tenantID, id: profile.id)] = profile
        }
    }

    func removeProfile(tenant: String, id: String) {
        state.withLock { _ = $0.profiles.removeValue(forKey: ProfileKey(tenant: tenant, id: id)) }
    }

    func profileID(tenant: String, type: String, hash: String) -> String? {
        state.withLock { $0.identifiers[IdentifierKey(tenant: tenant, type: type, hash: hash)] }
    }

    func store(tenant: String, type: String, hash: String, profileID: String) {
        state.withLock { state in
            if state.identifiers.count >= Self.maximumIdentifiers { state.identifiers = [:] }
            state.identifiers[IdentifierKey(tenant: tenant, type: type, hash: hash)] = profileID
        }
    }

    /// Identifiers moved between profiles (a merge): which ones is not tracked, so all go.
    func clearIdentifiers() {
        state.withLock { $0.identifiers = [:] }
    }
}

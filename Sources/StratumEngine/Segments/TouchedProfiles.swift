import Synchronization

/// Profiles changed by committed ingestion since dynamic segments last looked:
/// the writer adds, the scheduler drains.
public final class TouchedProfiles: Sendable {
    private let byTenant = Mutex<[String: Set<String>]>([:])

    public init() {}

    /// Records the profiles that `outcomes` stored events for or merged away.
    public func add(tenant: String, outcomes: [MessageOutcome]) {
        var ids: Set<String> = []
        for case .stored(_, let profileID, _, let merged) in outcomes {
            if let profileID { ids.insert(profileID) }
            ids.formUnion(merged)
        }
        guard !ids.isEmpty else { return }
        byTenant.withLock { $0[tenant, default: []].formUnion(ids) }
    }

    /// Records profiles changed other than by ingestion (a static segment's
    /// members), so dynamic segments that refer to them follow too.
    public func add(tenant: String, profiles: some Sequence<String>) {
        let ids = Set(profiles)
        guard !ids.isEmpty else { return }
        byTenant.withLock { $0[tenant, default: []].formUnion(ids) }
    }

    /// Takes everything recorded so far.
    public func drain() -> [String: Set<String>] {
        byTenant.withLock { current in
            defer { current = [:] }
            return current
        }
    }

    public var isEmpty: Bool { byTenant.withLock { $0.isEmpty } }
}

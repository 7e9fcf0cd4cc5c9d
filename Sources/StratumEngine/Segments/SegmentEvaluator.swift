import Foundation
import StratumDefinitions
import StratumStore

/// Evaluates segment rules against the store as of an instant.
public struct SegmentEvaluator: Sendable {
    public let definitions: DefinitionSet
    public let runtime: Runtime

    public init(definitions: DefinitionSet, runtime: Runtime) {
        self.definitions = definitions
        self.runtime = runtime
    }

    /// The context rules of `tenant` are compiled with at `asOf`.
    public func context(tenant: String, asOf: Milliseconds) -> RuleContext {
        let identity = runtime.tenants[tenant]?.identity ?? IdentityRules(nil)
        let segments = definitions.segments.filter { $0.definition.tenantID == tenant }.map(\.definition)
        return RuleContext(
            tenant: tenant, asOf: asOf, churnPeriodDays: runtime.tenants[tenant]?.churnPeriodDays ?? SettingsDefinition.defaultChurnPeriodDays,
            identifierHash: { type, value in identity.identifier(type: type, raw: value)?.hash },
            segmentReference: { name in
                guard let segment = segments.first(where: { $0.name == name }) else { return nil }
                if segment.effectiveType == .static { return .storedMembers }
                return segment.rules.map(SegmentReference.rules)
            })
    }

    /// How many profiles `segment` holds at `asOf`, and the first `sample` of them by id.
    public func preview(_ segment: SegmentDefinition, store: SQLiteStore, asOf: Milliseconds, sample: Int) async throws -> (count: Int, sample: [String]) {
        // A static segment has no rules: its members are the stored ones.
        if segment.effectiveType == .static {
            let count = try await store.segmentStates(tenant: segment.tenantID).first { $0.segment == segment.name }?.profileCount ?? 0
            return (count, try await store.segmentMembers(tenant: segment.tenantID, segment: segment.name, after: nil, limit: max(0, sample)))
        }
        guard let rules = segment.rules else { return (0, []) }
        return try await store.evaluate(rules, context: context(tenant: segment.tenantID, asOf: asOf), limit: sample)
    }
}

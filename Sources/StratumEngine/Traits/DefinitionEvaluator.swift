import Foundation
import StratumDefinitions
import StratumStore

/// Computes a tenant's traits, then its RFM models (which may read trait
/// values later), each set-at-a-time, and reports what each run did.
public struct DefinitionEvaluator: Sendable {
    public let definitions: DefinitionSet
    public let store: SQLiteStore

    public init(definitions: DefinitionSet, store: SQLiteStore) {
        self.definitions = definitions
        self.store = store
    }

    /// What one definition's run did.
    public struct Run: Sendable {
        public var kind: DefinitionKind
        public var name: String
        public var tenant: String
        public var profiles: Int
        public var duration: Swift.Duration
    }

    /// Runs every trait, then every RFM model, as of `asOf`.
    public func refresh(asOf: Milliseconds, only: Set<DefinitionKind> = [.trait, .rfm]) async throws -> [Run] {
        var runs: [Run] = []
        if only.contains(.trait) {
            for loaded in definitions.traits {
                let started = ContinuousClock.now
                let count = try await store.computeTrait(loaded.definition, asOf: asOf)
                runs.append(Run(kind: .trait, name: loaded.definition.name, tenant: loaded.definition.tenantID, profiles: count, duration: ContinuousClock.now - started))
            }
        }
        if only.contains(.rfm) {
            for loaded in definitions.rfmModels {
                let started = ContinuousClock.now
                let model = loaded.definition
                let inputs = try await store.rfmInputs(model, asOf: asOf).map {
                    RFMScoring.Input(profileID: $0.profileID, days: $0.days, frequency: $0.frequency, monetary: $0.monetary)
                }
                let scores = RFMScoring.score(inputs, model: model)
                try await store.storeRFM(model: model.name, tenant: model.tenantID, scores: scores.map { ($0.profileID, $0.r, $0.f, $0.m, $0.segment) })
                runs.append(Run(kind: .rfm, name: model.name, tenant: model.tenantID, profiles: scores.count, duration: ContinuousClock.now - started))
            }
        }
        return runs
    }
}

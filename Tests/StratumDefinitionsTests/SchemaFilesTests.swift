import Foundation
import StratumDefinitions
import StratumJSON
import Testing

struct SchemaFilesTests {
    static let schemasDirectory = Repository.root.appending(path: "schemas")

    @Test func theBinaryValidatesWithExactlyTheFilesInSchemas() throws {
        let onDisk = try Repository.files(in: Self.schemasDirectory, suffix: ".schema.json")
        #expect(Set(onDisk.map(\.lastPathComponent)) == Set(DefinitionSchemas.files.keys))
        for file in onDisk {
            let bytes = Array(try Data(contentsOf: file))
            // Compared by equality, reported by size: the bytes themselves would flood the log.
            let embedded = DefinitionSchemas.files[file.lastPathComponent]
            let same = embedded == bytes
            #expect(same, "\(file.lastPathComponent) (\(bytes.count) bytes) differs from the embedded copy (\(embedded?.count ?? 0) bytes): rebuild")
        }
    }

    @Test func everyKindHasASchemaFile() {
        for kind in DefinitionKind.allCases {
            #expect(DefinitionSchemas.files[kind.schemaFile] != nil, "no schemas/\(kind.schemaFile)")
        }
    }

    @Test func everySchemaFileIsDraft2020_12JSON() throws {
        for (file, bytes) in DefinitionSchemas.files {
            let schema = try JSONParser.parse(bytes)
            #expect(schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", "\(file)")
        }
    }

    @Test func everyRefInTheSchemasResolves() {
        // A schema error surfaces as a violation whose message starts with "schema error".
        let instance: JSONValue = ["kind": "Segment", "name": "x", "rules": ["conditions": [["field": "event", "event_name": "E", "operator": "within_last", "value": 1, "unit": "days", "where": [["property": "p", "operator": "exists"]]], ["field": "total_events", "operator": "equals", "value": 1]]], "schedule": ["every": "1m"]]
        for kind in DefinitionKind.allCases {
            let violations = DefinitionSchemas.violations(of: instance, kind: kind)
            #expect(!violations.contains { $0.message.hasPrefix("schema error") }, "\(kind): \(violations.map(\.message))")
        }
        #expect(DefinitionSchemas.violations(of: instance, kind: .segment).isEmpty)
    }
}

struct BundledDefinitionsTests {
    static let sets = ["definitions", "examples/saas"]

    @Test(arguments: sets)
    func bundledSetIsValid(_ directory: String) throws {
        let result = try DefinitionLoader.load(directory: Repository.root.appending(path: directory).path, environment: [:])
        #expect(result.diagnostics.filter { $0.severity == .error }.map(\.formatted) == [])
        #expect(result.definitions.count > 8)
        // Every kind is represented.
        let definitions = result.definitions
        #expect(!definitions.settings.isEmpty && !definitions.sources.isEmpty && !definitions.identities.isEmpty)
        #expect(!definitions.traits.isEmpty && !definitions.rfmModels.isEmpty && !definitions.segments.isEmpty)
        #expect(!definitions.funnels.isEmpty && !definitions.webhooks.isEmpty)
    }

    @Test func theBundledSetHoldsTheSeedsExampleSegmentAndFunnel() throws {
        let result = try DefinitionLoader.load(directory: Repository.root.appending(path: "definitions").path, environment: [:])
        let customer = Condition.field(FieldCondition(field: "lifecycle_stage", operator: .equals, value: "customer", unit: nil))
        let purchases = Condition.field(FieldCondition(field: "computed_traits.total_purchases", operator: .greaterThan, value: 3, unit: nil))
        let recent = Condition.event(EventCondition(eventName: "Purchase", operator: .withinLast, value: 30, unit: .days, where: nil, count: nil, source: nil))
        let countries: JSONValue = ["US", "CA", "UK"]
        let country = Condition.field(FieldCondition(field: "profile_data.country", operator: .in, value: countries, unit: nil))
        let seedRules = result.definitions.segments.compactMap(\.definition.rules).contains { rules in
            let conditions = rules.conditions ?? []
            let hasCountryGroup = (rules.groups ?? []).contains { group in
                group.effectiveLogic == .or && (group.conditions ?? []).contains(country)
            }
            return conditions.contains(customer) && conditions.contains(purchases) && conditions.contains(recent) && hasCountryGroup
        }
        #expect(seedRules)
        let funnelSteps = result.definitions.funnels.map { $0.definition.steps.map(\.eventName) }
        #expect(funnelSteps.contains(["ProductView", "AddToCart", "BeginCheckout", "Purchase"]))
    }
}

import StratumJSON

/// A definition with the file it came from and where each of its values is.
public struct Loaded<D: Definition>: Sendable {
    public var definition: D
    public var file: String
    public var document: YAMLDocument

    /// Where a value is, for diagnostics.
    public func location(_ pointer: JSONPointer) -> SourceLocation { document.location(of: pointer) }
}

/// Every definition of a directory, by kind.
public struct DefinitionSet: Sendable {
    public var settings: [Loaded<SettingsDefinition>] = []
    public var sources: [Loaded<SourceDefinition>] = []
    public var identities: [Loaded<IdentityDefinition>] = []
    public var traits: [Loaded<TraitDefinition>] = []
    public var rfmModels: [Loaded<RFMDefinition>] = []
    public var segments: [Loaded<SegmentDefinition>] = []
    public var funnels: [Loaded<FunnelDefinition>] = []
    public var webhooks: [Loaded<WebhookDefinition>] = []
    /// Definitions whose files have errors of their own (schema or type), as
    /// "Kind/tenant/name": references to them are not also reported as unknown.
    public var unloaded: Set<String> = []

    public init() {}

    /// How many definitions of all kinds.
    public var count: Int {
        settings.count + sources.count + identities.count + traits.count + rfmModels.count + segments.count
            + funnels.count + webhooks.count
    }

    /// Every tenant named by any definition.
    public var tenants: Set<String> {
        var result: Set<String> = []
        result.formUnion(settings.map(\.definition.tenantID))
        result.formUnion(sources.map(\.definition.tenantID))
        result.formUnion(identities.map(\.definition.tenantID))
        result.formUnion(traits.map(\.definition.tenantID))
        result.formUnion(rfmModels.map(\.definition.tenantID))
        result.formUnion(segments.map(\.definition.tenantID))
        result.formUnion(funnels.map(\.definition.tenantID))
        result.formUnion(webhooks.map(\.definition.tenantID))
        return result
    }

    /// The Settings of `tenant`, if it has one.
    public func settings(for tenant: String) -> SettingsDefinition? {
        settings.first { $0.definition.tenantID == tenant }?.definition
    }

    /// The Identity rules of `tenant`, if it has one.
    public func identity(for tenant: String) -> IdentityDefinition? {
        identities.first { $0.definition.tenantID == tenant }?.definition
    }
}

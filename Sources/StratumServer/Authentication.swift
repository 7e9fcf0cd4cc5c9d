import Foundation
import Hummingbird
import StratumCrypto
import StratumDefinitions
import StratumEngine

/// The credential a request carries: Basic-auth user (Segment's write key,
/// empty password) or a Bearer token.
enum Credential {
    /// The write key or token in the Authorization header, if any.
    static func fromHeader(_ request: Request) throws(APIError) -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { throw .unauthorized("malformed Authorization header; use Basic <base64 writeKey:> or Bearer <key>") }
        switch parts[0].lowercased() {
        case "basic":
            guard let decoded = Data(base64Encoded: parts[1].trimmingCharacters(in: .whitespaces)).map({ String(decoding: $0, as: UTF8.self) }) else {
                throw .unauthorized("the Basic credentials are not valid base64")
            }
            let user = decoded.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            return user.isEmpty ? nil : user
        case "bearer":
            let token = parts[1].trimmingCharacters(in: .whitespaces)
            return token.isEmpty ? nil : token
        default:
            throw .unauthorized("unsupported Authorization scheme \(parts[0]); use Basic or Bearer")
        }
    }
}

/// Admin API tokens from every tenant's Settings, by SHA-256.
struct AdminTokens: Sendable {
    struct Token: Sendable {
        var name: String
        var tenant: String
        var hash: [UInt8]
        var scopes: Set<SettingsDefinition.Scope>
    }

    var tokens: [Token]

    init(definitions: DefinitionSet, environment: [String: String]) throws {
        var tokens: [Token] = []
        var problems: [String] = []
        for loaded in definitions.settings {
            for token in loaded.definition.adminTokens ?? [] {
                let hash: [UInt8]
                if let digest = token.tokenSha256 {
                    hash = Digest.bytes(hex: digest)
                } else if let reference = token.token, let value = Runtime.resolve(reference, environment) {
                    hash = Digest.sha256(Array(value.utf8))
                } else {
                    problems.append("\(loaded.file): admin token \"\(token.name)\" \(token.token ?? "") is not set")
                    continue
                }
                tokens.append(Token(name: token.name, tenant: loaded.definition.tenantID, hash: hash, scopes: Set(token.scopes)))
            }
        }
        // Compared once resolved: two ${env:...} references may hold the same token.
        for (_, sharing) in Dictionary(grouping: tokens, by: { Digest.hex($0.hash) }).sorted(by: { $0.key < $1.key }) where sharing.count > 1 {
            problems.append("admin tokens \(sharing.map { "\($0.tenant)/\($0.name)" }.sorted().joined(separator: " and ")) are the same token; a token must identify one tenant and one set of scopes: give each its own")
        }
        guard problems.isEmpty else { throw Runtime.ConfigurationError(description: problems.joined(separator: "\n")) }
        self.tokens = tokens
    }

    /// The token matching `value` (compared in constant time), if any.
    func token(for value: String) -> Token? {
        let digest = Digest.sha256(Array(value.utf8))
        var found: Token?
        for token in tokens where Digest.constantTimeEquals(token.hash, digest) { found = token }
        return found
    }
}

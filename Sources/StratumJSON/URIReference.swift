/// RFC 3986 URI references, just enough to resolve JSON Schema `$id` and `$ref`.
struct URIReference: Equatable {
    var scheme: String?
    var authority: String?
    var path: String
    var query: String?
    var fragment: String?

    init(scheme: String?, authority: String?, path: String, query: String?, fragment: String?) {
        self.scheme = scheme
        self.authority = authority
        self.path = path
        self.query = query
        self.fragment = fragment
    }

    /// Splits a reference into its five components (RFC 3986, appendix B).
    init(parsing text: String) {
        var rest = Substring(text)
        if let hash = rest.firstIndex(of: "#") {
            fragment = String(rest[rest.index(after: hash)...])
            rest = rest[..<hash]
        }
        if let question = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: question)...])
            rest = rest[..<question]
        }
        if let colon = rest.firstIndex(of: ":"),
            let first = rest.first, first.isLetter,
            rest[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) })
        {
            scheme = String(rest[..<colon])
            rest = rest[rest.index(after: colon)...]
        }
        if rest.hasPrefix("//") {
            rest = rest.dropFirst(2)
            let end = rest.firstIndex(of: "/") ?? rest.endIndex
            authority = String(rest[..<end])
            rest = rest[end...]
        }
        path = String(rest)
    }

    var text: String {
        var result = ""
        if let scheme { result += scheme + ":" }
        if let authority { result += "//" + authority }
        result += path
        if let query { result += "?" + query }
        if let fragment { result += "#" + fragment }
        return result
    }

    /// The target URI of `reference` resolved against `base` (RFC 3986, 5.2.2).
    static func resolve(_ reference: String, against base: String) -> String {
        let ref = URIReference(parsing: reference)
        let base = URIReference(parsing: base)
        var target = URIReference(scheme: nil, authority: nil, path: "", query: nil, fragment: ref.fragment)
        if ref.scheme != nil {
            target.scheme = ref.scheme
            target.authority = ref.authority
            target.path = removeDotSegments(ref.path)
            target.query = ref.query
        } else {
            if ref.authority != nil {
                target.authority = ref.authority
                target.path = removeDotSegments(ref.path)
                target.query = ref.query
            } else {
                if ref.path.isEmpty {
                    target.path = base.path
                    target.query = ref.query ?? base.query
                } else {
                    if ref.path.hasPrefix("/") {
                        target.path = removeDotSegments(ref.path)
                    } else {
                        target.path = removeDotSegments(merge(base: base, path: ref.path))
                    }
                    target.query = ref.query
                }
                target.authority = base.authority
            }
            target.scheme = base.scheme
        }
        return target.text
    }

    private static func merge(base: URIReference, path: String) -> String {
        if base.authority != nil && base.path.isEmpty { return "/" + path }
        guard let slash = base.path.lastIndex(of: "/") else { return path }
        return String(base.path[...slash]) + path
    }

    private static func removeDotSegments(_ path: String) -> String {
        guard path.contains(".") else { return path }
        var input = Substring(path)
        var output: [Substring] = []
        var absolute = false
        if input.hasPrefix("/") { absolute = true }
        let segments = input.split(separator: "/", omittingEmptySubsequences: false)
        input = ""
        for (position, segment) in segments.enumerated() {
            if position == 0 && absolute { continue }
            switch segment {
            case ".":
                if position == segments.count - 1 { output.append("") }
            case "..":
                if !output.isEmpty { output.removeLast() }
                if position == segments.count - 1 { output.append("") }
            default:
                output.append(segment)
            }
        }
        return (absolute ? "/" : "") + output.joined(separator: "/")
    }

    /// The URI without its fragment.
    static func stripFragment(_ uri: String) -> String {
        guard let hash = uri.firstIndex(of: "#") else { return uri }
        return String(uri[..<hash])
    }
}

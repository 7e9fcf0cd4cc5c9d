/// Trimming without bridging to NSString: Foundation's
/// `trimmingCharacters(in:)` was about 4% of the ingestion daemon's CPU
/// (identifier normalisation and message parsing, several calls per event).
/// The sets are Foundation's, scalar by scalar (checked against it in the
/// tests), which both include U+200B ZERO WIDTH SPACE (Unicode counts it as
/// white space no longer; a copied identifier's edges still should not keep it).
extension StringProtocol {
    /// Without leading and trailing white space and newlines (Foundation's
    /// `.whitespacesAndNewlines`: the Unicode White_Space property, and U+200B).
    func trimmingWhitespaceAndNewlines() -> String {
        trimming { $0.properties.isWhitespace || $0 == "\u{200B}" }
    }

    /// Without leading and trailing spaces and tabs (Foundation's
    /// `.whitespaces`: general category Zs, U+0009 and U+200B), newlines kept.
    func trimmingWhitespace() -> String {
        trimming { $0 == "\t" || $0 == "\u{200B}" || $0.properties.generalCategory == .spaceSeparator }
    }

    private func trimming(_ isTrimmed: (Unicode.Scalar) -> Bool) -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !isTrimmed($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !isTrimmed($0) })!
        var kept = String.UnicodeScalarView()
        kept.append(contentsOf: scalars[first...last])
        return String(kept)
    }
}

import Foundation

/// Sums decimals exactly: JSON numbers are added as written (19.99 stays
/// 19.99). Stored properties are written by `JSONWriter`, so a number is the
/// shortest text that reads back as the same double. The sum is text (no
/// trailing noise).
///
/// Values written as plain decimals of up to 18 digits (what amounts are) are
/// added as integers scaled by a power of ten, in 128 bits; anything else
/// (exponents, more digits, a sum past 38 digits) continues in `Decimal`,
/// which is exact too but an order of magnitude slower.
struct DecimalSum {
    /// The sum times 10^scale, while it fits.
    var scaled: Int128 = 0
    var scale: Int32 = 0
    /// Once the sum no longer fits the scaled integer: 1 + its index in the
    /// caller's `overflows` (so that all-zero memory is an empty sum).
    var overflow: Int32 = 0
    var seen = false

    static let posix = Locale(identifier: "en_US_POSIX")

    /// Adds a JSON number's text; anything else (a string, true) is ignored.
    /// Sums past the scaled integer continue in `overflows`.
    mutating func add(number text: UnsafeBufferPointer<UInt8>, overflows: inout [Decimal]) {
        guard JSONNumber.starts(text) else { return }
        if overflow == 0, let (mantissa, digits) = Self.digits(text), add(mantissa, digits) {
            seen = true
            return
        }
        guard let exact = Decimal(string: String(decoding: text, as: UTF8.self), locale: Self.posix) else { return }
        if overflow == 0 {
            overflows.append(sumAsDecimal)
            overflow = Int32(overflows.count)
        }
        overflows[Int(overflow) - 1] += exact
        seen = true
    }

    /// A sum's text as a Decimal: plain decimals of up to 18 digits built from
    /// their digits (Foundation's parser costs a microsecond or two each).
    static func decimal(_ text: String) -> Decimal? {
        if let (mantissa, digits) = digits(text.utf8) {
            return Decimal(sign: mantissa < 0 ? .minus : .plus, exponent: -digits, significand: Decimal(mantissa.magnitude))
        }
        return Decimal(string: text, locale: posix)
    }

    /// A plain decimal (`-12.50`) of at most 18 digits as an integer and its
    /// number of fraction digits; nil for anything else.
    static func digits(_ text: some Collection<UInt8>) -> (Int64, Int)? {
        var mantissa: Int64 = 0
        var digits = 0
        var fraction = -1
        var negative = false
        for (index, byte) in text.enumerated() {
            switch byte {
            case UInt8(ascii: "-") where index == 0: negative = true
            case UInt8(ascii: "."): guard fraction < 0, digits > 0 else { return nil }; fraction = 0
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard digits < 18 else { return nil }
                mantissa = mantissa * 10 + Int64(byte - UInt8(ascii: "0"))
                digits += 1
                if fraction >= 0 { fraction += 1 }
            default: return nil
            }
        }
        guard digits > 0, fraction != 0 else { return nil }
        return (negative ? -mantissa : mantissa, max(fraction, 0))
    }

    /// 10^0 ... 10^38: every power of ten an Int128 holds.
    static let powers: [Int128] = (0...38).reduce(into: []) { powers, exponent in powers.append(exponent == 0 ? 1 : powers[exponent - 1] * 10) }

    static func power(_ exponent: Int) -> Int128 {
        powers[exponent]
    }

    /// Adds mantissa × 10^-digits to the scaled sum; false (nothing changed) if it would overflow.
    mutating func add(_ mantissa: Int64, _ digits: Int) -> Bool {
        var (sum, scale) = (scaled, Int(self.scale))
        if digits > scale {
            let (widened, overflow) = sum.multipliedReportingOverflow(by: Self.power(digits - scale))
            guard !overflow else { return false }
            (sum, scale) = (widened, digits)
        }
        let (term, termOverflow) = Int128(mantissa).multipliedReportingOverflow(by: Self.power(scale - digits))
        let (total, overflow) = sum.addingReportingOverflow(term)
        guard !termOverflow, !overflow else { return false }
        (scaled, self.scale) = (total, Int32(scale))
        return true
    }

    /// The scaled sum as text: no trailing fraction zeros, no "-0".
    var scaledText: String {
        let magnitude = scaled.magnitude
        let scale = Int(self.scale)
        let unit = UInt128(Self.power(scale))
        var text = String(magnitude / unit)
        var fraction = String(magnitude % unit)
        if scale > 0 {
            fraction = String(repeating: "0", count: scale - fraction.count) + fraction
            while fraction.last == "0" { fraction.removeLast() }
            if !fraction.isEmpty { text += "." + fraction }
        }
        return scaled < 0 ? "-" + text : text
    }

    var sumAsDecimal: Decimal {
        Decimal(string: scaledText, locale: Self.posix) ?? 0
    }

    /// The sum as text; nil when nothing was added.
    func text(overflows: [Decimal]) -> String? {
        guard seen else { return nil }
        return overflow > 0 ? "\(overflows[Int(overflow) - 1])" : scaledText
    }
}

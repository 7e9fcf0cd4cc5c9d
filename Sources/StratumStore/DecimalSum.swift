import Foundation
import GRDB

/// Sums decimals exactly inside SQLite: JSON numbers arrive as REAL and are
/// read through their shortest round-trip text (19.99 stays 19.99); numeric
/// text is parsed as written. Returns the sum as text (no trailing noise).
///
/// Values written as plain decimals of up to 18 digits (what amounts are) are
/// added as integers scaled by a power of ten, in 128 bits; anything else
/// (exponents, more digits, a sum past 38 digits) continues in `Decimal`,
/// which is exact too but an order of magnitude slower.
struct DecimalSum: DatabaseAggregate {
    /// The sum times 10^scale, while it fits.
    var scaled: Int128 = 0
    var scale = 0
    /// The sum once it no longer fits the scaled integer.
    var decimal: Decimal?
    var seen = false

    static let posix = Locale(identifier: "en_US_POSIX")

    static func decimal(_ value: DatabaseValue) -> Decimal? {
        switch value.storage {
        case .int64(let integer): return Decimal(integer)
        case .double(let double) where double.isFinite: return Decimal(string: "\(double)", locale: posix)
        case .string(let text): return Decimal(string: text.trimmingCharacters(in: .whitespaces), locale: posix)
        default: return nil
        }
    }

    /// A plain decimal (`-12.50`) of at most 18 digits as an integer and its
    /// number of fraction digits; nil for anything else.
    static func digits(_ text: Substring.UTF8View) -> (Int64, Int)? {
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

    mutating func step(_ dbValues: [DatabaseValue]) throws {
        guard let value = dbValues.first else { return }
        let parts: (Int64, Int)?
        switch value.storage {
        case .int64(let integer): parts = (integer, 0)
        case .double(let double) where double.isFinite: parts = Self.digits(double.description[...].utf8)
        case .string(let text): parts = Self.digits(text.trimmingCharacters(in: .whitespaces)[...].utf8)
        default: return
        }
        if decimal == nil, let (mantissa, digits) = parts, add(mantissa, digits) {
            seen = true
            return
        }
        guard let exact = Self.decimal(value) else { return }
        decimal = (decimal ?? sumAsDecimal) + exact
        seen = true
    }

    /// Adds mantissa × 10^-digits to the scaled sum; false (nothing changed) if it would overflow.
    mutating func add(_ mantissa: Int64, _ digits: Int) -> Bool {
        var (sum, scale) = (scaled, self.scale)
        if digits > scale {
            let (widened, overflow) = sum.multipliedReportingOverflow(by: Self.power(digits - scale))
            guard !overflow else { return false }
            (sum, scale) = (widened, digits)
        }
        let (term, termOverflow) = Int128(mantissa).multipliedReportingOverflow(by: Self.power(scale - digits))
        let (total, overflow) = sum.addingReportingOverflow(term)
        guard !termOverflow, !overflow else { return false }
        (scaled, self.scale) = (total, scale)
        return true
    }

    /// The scaled sum as text: no trailing fraction zeros, no "-0".
    var scaledText: String {
        let magnitude = scaled.magnitude
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

    func finalize() throws -> (any DatabaseValueConvertible)? {
        guard seen else { return nil }
        return decimal.map { "\($0)" } ?? scaledText
    }

    static let function = DatabaseFunction("stratum_decimal_sum", argumentCount: 1, pure: true, aggregate: DecimalSum.self)
}

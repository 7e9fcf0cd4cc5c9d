import Foundation
import StratumDefinitions

/// RFM scores 1–5 and named segments (the seed's RFMConfig and table).
public enum RFMScoring {
    public struct Input: Sendable {
        public var profileID: String
        /// Days since the latest recency event (beyond the lookback if none).
        public var days: Int
        public var frequency: Int
        public var monetary: Amount

        /// `monetaryText`: the amount as written (a sum's text), when at hand.
        public init(profileID: String, days: Int, frequency: Int, monetary: Decimal, monetaryText: String? = nil) {
            self.profileID = profileID
            self.days = days
            self.frequency = frequency
            self.monetary = Amount(monetary, text: monetaryText)
        }
    }

    /// An exact amount that orders fast: by its nearest Double first (parsing
    /// rounds correctly, so a smaller amount never gets a larger Double), and
    /// by the exact Decimal only when the Doubles are equal.
    public struct Amount: Comparable, Sendable {
        public let exact: Decimal
        let approximation: Double

        public init(_ exact: Decimal, text: String? = nil) {
            self.exact = exact
            approximation = text.flatMap(Double.init) ?? Double("\(exact)") ?? 0
        }

        public static func < (lhs: Amount, rhs: Amount) -> Bool {
            lhs.approximation != rhs.approximation ? lhs.approximation < rhs.approximation : lhs.exact < rhs.exact
        }

        public static func == (lhs: Amount, rhs: Amount) -> Bool {
            lhs.exact == rhs.exact
        }
    }

    public struct Score: Sendable, Equatable {
        public var profileID: String
        public var r: Int
        public var f: Int
        public var m: Int
        public var segment: String
    }


    /// The 20th, 40th, 60th and 80th percentiles by nearest rank:
    /// the value at rank ⌈p/100 × N⌉ of the ascending values.
    public static func cutPoints<T: Comparable>(_ values: [T]) -> [T] {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return [] }
        return [20, 40, 60, 80].map { percentile in
            let rank = Int((Double(percentile) / 100 * Double(sorted.count)).rounded(.up))
            return sorted[min(max(rank, 1), sorted.count) - 1]
        }
    }

    /// 1 + how many cut points `value` exceeds: at most the 20th percentile
    /// scores 1, above the 80th scores 5, and equal values score equally.
    public static func rank<T: Comparable>(_ value: T, cuts: [T]) -> Int {
        1 + cuts.count { value > $0 }
    }

    /// Scores every input: quintiles of this population, or the fixed thresholds.
    public static func score(_ inputs: [Input], model: RFMDefinition) -> [Score] {
        let segments = model.segments ?? RFMDefinition.defaultSegments
        let quintiles = model.quintileScoring ?? true
        let dayCuts = quintiles ? cutPoints(inputs.map(\.days)) : (model.thresholds?.recencyDays ?? [])
        let frequencyCuts = quintiles ? cutPoints(inputs.map(\.frequency)) : []
        let monetaryCuts = quintiles ? cutPoints(inputs.map(\.monetary)) : []
        return inputs.map { input in
            let r: Int
            let f: Int
            let m: Int
            if quintiles {
                // Fewer days since the last purchase is better.
                r = 6 - rank(input.days, cuts: dayCuts)
                f = rank(input.frequency, cuts: frequencyCuts)
                m = rank(input.monetary, cuts: monetaryCuts)
            } else {
                let thresholds = model.thresholds
                // recency_days [a, b, c, d]: at most a days scores 5, ..., more than d scores 1.
                r = 5 - (thresholds?.recencyDays ?? []).count { input.days > $0 }
                // frequency and monetary [a, b, c, d]: at least d scores 5, ..., below a scores 1.
                f = 1 + (thresholds?.frequency ?? []).count { input.frequency >= $0 }
                m = 1 + (thresholds?.monetary ?? []).count { input.monetary.exact >= Decimal($0) }
            }
            let name = segments.first { $0.r.contains(r) && $0.f.contains(f) && $0.m.contains(m) }?.name ?? RFMDefinition.unclassifiedSegment
            return Score(profileID: input.profileID, r: r, f: f, m: m, segment: name)
        }
    }
}

import Foundation
import StratumCrypto
import Synchronization

/// Makes row ids: UUID version 7 (RFC 9562), lowercase text.
///
/// Time-ordered ids put new profiles next to each other in the primary-key
/// B-tree instead of on random pages, which keeps write transactions small;
/// generating them needs no system call per id (a SplitMix64 stream seeded
/// once from the system's random source).
public final class IDGenerator: Sendable {
    private let random: Mutex<SplitMix64>
    private let clock: @Sendable () -> Int64

    public init(clock: @escaping @Sendable () -> Int64 = IngestionPipeline.systemClock) {
        var system = SystemRandomNumberGenerator()
        random = Mutex(SplitMix64(seed: system.next()))
        self.clock = clock
    }

    public func next() -> String {
        let (high, low) = random.withLock { ($0.next(), $0.next()) }
        let milliseconds = UInt64(max(0, clock())) & 0xFFFF_FFFF_FFFF
        // 48 bits of time, version 7, 12 random bits; variant 10, 62 random bits.
        let first = (milliseconds << 16) | 0x7000 | (high & 0x0FFF)
        let second = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return Self.format(first, second)
    }

    static let digits = Array("0123456789abcdef".utf8)

    static func format(_ first: UInt64, _ second: UInt64) -> String {
        var bytes = [UInt8](repeating: UInt8(ascii: "-"), count: 36)
        var position = 0
        func put(_ value: UInt64, nibbles: Int) {
            for shift in stride(from: (nibbles - 1) * 4, through: 0, by: -4) {
                if position == 8 || position == 13 || position == 18 || position == 23 { position += 1 }
                bytes[position] = digits[Int((value >> UInt64(shift)) & 0xF)]
                position += 1
            }
        }
        put(first, nibbles: 16)
        put(second, nibbles: 16)
        return String(decoding: bytes, as: UTF8.self)
    }
}

import MicroCoreTestSupport
import MicroCore
import Testing

@Suite("Timestamp")
struct TimestampTests {
    @Test("advances with the continuous clock and converts both ways within a microsecond")
    func conversion() async throws {
        let instant = ContinuousClock.now
        let converted = Timestamp(instant)
        #expect(abs(Timestamp.now.nanoseconds - converted.nanoseconds) < 50_000_000)
        // There and back again: the same instant, give or take rounding.
        let back = converted.instant
        #expect(abs(Timestamp(back).nanoseconds - converted.nanoseconds) <= 1_000)
        #expect(abs(instant.duration(to: back).components.attoseconds) <= 1_000_000_000_000)
        // Both clocks measure the same interval.
        let t0 = Timestamp.now, i0 = ContinuousClock.now
        try await Task.sleep(for: .milliseconds(20))
        let dt = t0.nanoseconds(to: .now), di = Timestamp.nanoseconds(i0.duration(to: .now))
        #expect(dt >= 20_000_000)
        #expect(abs(dt - di) < 5_000_000)
    }

    @Test("arithmetic saturates instead of trapping")
    func saturation() {
        let t = Timestamp(nanoseconds: 1_000)
        #expect(t.advanced(byNanoseconds: .max).nanoseconds == .max)
        #expect(Timestamp(nanoseconds: -5).advanced(byNanoseconds: .min).nanoseconds == .min)
        #expect(t.advanced(by: .seconds(Int64.max)).nanoseconds == .max)
        #expect(Timestamp.nanoseconds(.seconds(-Int64.max)) == .min)
        #expect(Timestamp(nanoseconds: .min).nanoseconds(to: Timestamp(nanoseconds: .max)) == .max)
        #expect(t.advanced(by: .milliseconds(3)).nanoseconds == 3_001_000)
        #expect(t.duration(to: Timestamp(nanoseconds: 2_500)) == .nanoseconds(1_500))
        #expect(Timestamp(nanoseconds: 1) < t)
        // The extremes convert without wrapping around: far past stays before now, far future after.
        #expect(Timestamp(nanoseconds: .min).instant < .now)
        #expect(Timestamp(nanoseconds: .max).instant > .now)
    }
}

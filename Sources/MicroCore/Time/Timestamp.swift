#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// A point in time on the continuous clock, in nanoseconds: the deadlines and arrival times of the hot paths.
///
/// `ContinuousClock.Instant` is a resilient type, so code outside the standard library handles it through
/// metadata and value-witness calls, and every async function holding one allocates space for it per call.
/// This is a plain integer the compiler sees through. Convert at the edges: ``init(_:)`` and ``instant``.
///
/// On Linux it reads `CLOCK_BOOTTIME`, the clock `ContinuousClock` reads there, so both advance together (also
/// across suspends). Not promised: that two conversions of the same instant give identical nanoseconds across
/// processes (the link between the two is taken once per process).
@frozen
public struct Timestamp: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Nanoseconds since an unspecified start (boot, on Linux).
    public var nanoseconds: Int64

    @inlinable
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// The current time: one clock read, no allocation.
    public static var now: Timestamp {
        var ts = timespec()
        #if os(Linux)
        clock_gettime(CLOCK_BOOTTIME, &ts)
        #else
        clock_gettime(CLOCK_MONOTONIC_RAW, &ts)
        #endif
        return Timestamp(nanoseconds: Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec))
    }

    /// The timestamp of a `ContinuousClock` instant.
    public init(_ instant: ContinuousClock.Instant) {
        self = Self.link.timestamp.advanced(by: Self.link.instant.duration(to: instant))
    }

    /// The same point as a `ContinuousClock` instant.
    public var instant: ContinuousClock.Instant {
        Self.link.instant.advanced(by: .nanoseconds(Self.link.timestamp.nanoseconds(to: self)))
    }

    /// This point moved by `nanoseconds`, saturating instead of overflowing.
    @inlinable
    public func advanced(byNanoseconds delta: Int64) -> Timestamp {
        let (sum, overflow) = nanoseconds.addingReportingOverflow(delta)
        return Timestamp(nanoseconds: overflow ? (delta > 0 ? .max : .min) : sum)
    }

    /// This point moved by `duration`, saturating.
    public func advanced(by duration: Duration) -> Timestamp { advanced(byNanoseconds: Self.nanoseconds(duration)) }

    /// Nanoseconds from here to `other` (negative when it is earlier), saturating.
    @inlinable
    public func nanoseconds(to other: Timestamp) -> Int64 {
        let (d, overflow) = other.nanoseconds.subtractingReportingOverflow(nanoseconds)
        return overflow ? (other.nanoseconds > nanoseconds ? .max : .min) : d
    }

    /// The time from here to `other`.
    public func duration(to other: Timestamp) -> Duration { .nanoseconds(nanoseconds(to: other)) }

    /// `duration` in nanoseconds, saturating at about ±292 years.
    public static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        if seconds >= 9_223_372_035 { return .max }
        if seconds <= -9_223_372_035 { return .min }
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    @inlinable
    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.nanoseconds < b.nanoseconds }

    public var description: String { "Timestamp(\(nanoseconds) ns)" }

    /// A pair of readings of both clocks taken together, once per process: how the two convert.
    private static let link = (timestamp: Timestamp.now, instant: ContinuousClock.now)
}

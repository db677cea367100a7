import MicroCore
import MicroFraming
import Testing

/// Feeds `chunks` in order and returns every frame handed out (copied).
private func feedAll(_ acc: inout FrameAccumulator, _ chunks: [[UInt8]]) throws -> [[UInt8]] {
    var frames: [[UInt8]] = []
    for chunk in chunks {
        try chunk.withUnsafeBytes { raw in
            try acc.feed(raw) { frame in
                frames.append(Array(frame))
                return true
            }
        }
    }
    return frames
}

/// A stream of frames with assorted payload sizes, zero included.
private func sampleFrames(headerSize: Int, count: Int = 12, seed: UInt64 = 42) -> [[UInt8]] {
    var rng = TestRandom(seed: seed)
    let sizes = [0, 1, 0, 7, 300, 0, 2, 4096, 1, 0, 33, 65]
    return (0..<count).map { i in
        lengthPrefixed(rng.bytes(sizes[i % sizes.count]), headerSize: headerSize, filler: UInt8(truncatingIfNeeded: i))
    }
}

@Suite("FrameAccumulator")
struct FrameAccumulatorTests {
    @Test("frames drip-fed byte by byte come out exactly as sent", arguments: [10, 4])
    func dripFed(headerSize: Int) throws {
        let frames = sampleFrames(headerSize: headerSize)
        let stream = frames.flatMap { $0 }
        var acc = FrameAccumulator(headerSize: headerSize, maxPayload: 1 << 20)
        var out: [[UInt8]] = []
        var handedOut = 0
        for (i, byte) in stream.enumerated() {
            let got = try feedAll(&acc, [[byte]])
            #expect(got.count <= 1)
            handedOut += got.reduce(0) { $0 + $1.count }
            out += got
            // Exactly the bytes of the incomplete frame are held; none once a frame is complete.
            #expect(acc.bufferedByteCount == i + 1 - handedOut)
        }
        #expect(out == frames)
        #expect(acc.bufferedByteCount == 0)
    }

    @Test("many frames in one read are all handed out in order", arguments: [10, 4])
    func manyFramesInOneRead(headerSize: Int) throws {
        let frames = sampleFrames(headerSize: headerSize, count: 500, seed: 7)
        var acc = FrameAccumulator(headerSize: headerSize, maxPayload: 1 << 20)
        let out = try feedAll(&acc, [frames.flatMap { $0 }])
        #expect(out.count == 500)
        #expect(out == frames)
        #expect(acc.bufferedByteCount == 0)
    }

    @Test("a stream split at every possible offset gives the same frames", arguments: [10, 4])
    func splitAtEveryOffset(headerSize: Int) throws {
        let frames = [
            lengthPrefixed([1, 2, 3], headerSize: headerSize),
            lengthPrefixed([], headerSize: headerSize),
            lengthPrefixed(Array(0..<200), headerSize: headerSize),
            lengthPrefixed([9], headerSize: headerSize),
        ]
        let stream = frames.flatMap { $0 }
        for split in 0...stream.count {
            var acc = FrameAccumulator(headerSize: headerSize, maxPayload: 1024)
            let first = try feedAll(&acc, [Array(stream[..<split])])
            // Everything of an incomplete frame before the split is held, nothing more.
            let handedOut = first.reduce(0) { $0 + $1.count }
            #expect(acc.bufferedByteCount == split - handedOut, "split at \(split)")
            let second = try feedAll(&acc, [Array(stream[split...])])
            #expect(first + second == frames, "split at \(split)")
            #expect(acc.bufferedByteCount == 0, "split at \(split)")
        }
    }

    @Test("a stream split at every pair of offsets gives the same frames")
    func splitAtEveryPairOfOffsets() throws {
        let frames = [lengthPrefixed([1, 2, 3, 4, 5], headerSize: 10), lengthPrefixed([], headerSize: 10),
                      lengthPrefixed([6, 7], headerSize: 10)]
        let stream = frames.flatMap { $0 }
        for a in 0...stream.count {
            for b in a...stream.count {
                var acc = FrameAccumulator(headerSize: 10, maxPayload: 64)
                let out = try feedAll(&acc, [Array(stream[..<a]), Array(stream[a..<b]), Array(stream[b...])])
                #expect(out == frames, "splits at \(a), \(b)")
                #expect(acc.bufferedByteCount == 0)
            }
        }
    }

    @Test("zero-length payloads are frames of just a header", arguments: [10, 4])
    func zeroLengthPayloads(headerSize: Int) throws {
        let frame = lengthPrefixed([], headerSize: headerSize)
        #expect(frame.count == headerSize)
        var acc = FrameAccumulator(headerSize: headerSize, maxPayload: 0)
        let out = try feedAll(&acc, [frame + frame + frame])
        #expect(out == [frame, frame, frame])
        #expect(acc.bufferedByteCount == 0)
        // A lone partial header is held, then completed.
        let partial = try feedAll(&acc, [Array(frame[..<(headerSize - 1)])])
        #expect(partial.isEmpty)
        #expect(acc.bufferedByteCount == headerSize - 1)
        let rest = try feedAll(&acc, [Array(frame[(headerSize - 1)...])])
        #expect(rest == [frame])
        #expect(acc.bufferedByteCount == 0)
    }

    @Test("a payload of exactly maxPayload is accepted", arguments: [10, 4])
    func exactlyMaxPayload(headerSize: Int) throws {
        var rng = TestRandom(seed: 3)
        let frame = lengthPrefixed(rng.bytes(1000), headerSize: headerSize)
        var acc = FrameAccumulator(headerSize: headerSize, maxPayload: 1000)
        #expect(try feedAll(&acc, [frame]) == [frame])
        // Also when it arrives in pieces (through the pending buffer).
        var acc2 = FrameAccumulator(headerSize: headerSize, maxPayload: 1000)
        let chunks = stride(from: 0, to: frame.count, by: 3).map { Array(frame[$0..<min($0 + 3, frame.count)]) }
        #expect(try feedAll(&acc2, chunks) == [frame])
    }

    @Test("one byte more than maxPayload throws FRAME_SIZE_ERROR", arguments: [10, 4])
    func overMaxPayload(headerSize: Int) throws {
        let frame = lengthPrefixed([UInt8](repeating: 1, count: 1001), headerSize: headerSize)
        // The whole frame in one read.
        var acc = FrameAccumulator(headerSize: headerSize, maxPayload: 1000)
        let e1 = #expect(throws: FramingError.self) { _ = try feedAll(&acc, [frame]) }
        #expect(e1?.code == .frameSizeError)
        // Just the header: the size is known, so it is refused before any payload arrives.
        var acc2 = FrameAccumulator(headerSize: headerSize, maxPayload: 1000)
        let e2 = #expect(throws: FramingError.self) { _ = try feedAll(&acc2, [Array(frame[..<headerSize])]) }
        #expect(e2?.code == .frameSizeError)
        // The header drip-fed: refused when its last byte arrives.
        var acc3 = FrameAccumulator(headerSize: headerSize, maxPayload: 1000)
        for i in 0..<(headerSize - 1) { #expect(try feedAll(&acc3, [[frame[i]]]).isEmpty) }
        let e3 = #expect(throws: FramingError.self) { _ = try feedAll(&acc3, [[frame[headerSize - 1]]]) }
        #expect(e3?.code == .frameSizeError)
        // After a good frame in the same read: the good one is handed out first.
        var acc4 = FrameAccumulator(headerSize: headerSize, maxPayload: 1000)
        let good = lengthPrefixed([5], headerSize: headerSize)
        var seen: [[UInt8]] = []
        let e4 = #expect(throws: FramingError.self) {
            try (good + frame).withUnsafeBytes { raw in
                try acc4.feed(raw) { seen.append(Array($0)); return true }
            }
        }
        #expect(e4?.code == .frameSizeError)
        #expect(seen == [good])
    }

    @Test("the largest length a header can carry is refused, not allocated")
    func hugeLength() throws {
        var acc = FrameAccumulator(headerSize: 10, maxPayload: 16 << 20)
        let header = be32(UInt32.max) + [1, 0] + be32(1)
        let e = #expect(throws: FramingError.self) { _ = try feedAll(&acc, [header]) }
        #expect(e?.code == .frameSizeError)
    }

    @Test("a large frame read straight into the pending buffer (directReadBuffer/commitDirectRead)", arguments: [10, 4])
    func directRead(headerSize: Int) throws {
        var rng = TestRandom(seed: 11)
        let payload = rng.bytes(1 << 20)
        let frame = lengthPrefixed(payload, headerSize: headerSize)
        let next = lengthPrefixed([1, 2, 3], headerSize: headerSize)
        var acc = FrameAccumulator(headerSize: headerSize, maxPayload: 2 << 20)

        // No incomplete frame: no direct buffer.
        let noRegion = acc.directReadBuffer()
        #expect(noRegion == nil)
        // An incomplete header: its size is unknown, so no direct buffer.
        #expect(try feedAll(&acc, [Array(frame[..<2])]).isEmpty)
        let noRegion2 = acc.directReadBuffer()
        #expect(noRegion2 == nil)
        // The header and a bit of payload.
        #expect(try feedAll(&acc, [Array(frame[2..<(headerSize + 100)])]).isEmpty)
        #expect(acc.bufferedByteCount == headerSize + 100)

        var offset = headerSize + 100
        var frames: [[UInt8]] = []
        var directReads = 0
        // As a connection reads: straight into the accumulator while it offers a region of at least 16 KiB (once
        // enough bytes arrived to justify it), otherwise 64 KiB through the shared buffer and `feed`.
        while offset < frame.count && frames.isEmpty {
            if let region = acc.directReadBuffer(minimum: 16 * 1024) {
                #expect(region.count <= frame.count - offset, "never more than the missing part")
                #expect(region.count >= 16 * 1024, "at least the minimum asked for")
                #expect(acc.reservedByteCount <= max(FrameAccumulator.initialReservation, 2 * offset),
                        "the buffer grows with the bytes that arrived")
                let n = min(64 * 1024, region.count)
                frame[offset..<(offset + n)].withUnsafeBytes { region.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
                acc.commitDirectRead(n) { frames.append(Array($0)); return true }
                offset += n
                directReads += 1
            } else {
                let n = min(64 * 1024, frame.count - offset)
                frames += try feedAll(&acc, [Array(frame[offset..<(offset + n)])])
                offset += n
            }
        }
        #expect(directReads > 1)
        if frames.isEmpty {
            frames += try feedAll(&acc, [Array(frame[offset...]) + next])
        } else {
            frames += try feedAll(&acc, [next])
        }
        #expect(frames.count == 2)
        #expect(frames.first == frame)
        #expect(frames.last == next)
        #expect(acc.bufferedByteCount == 0)
        let noRegion3 = acc.directReadBuffer(minimum: 1)
        #expect(noRegion3 == nil)
    }

    @Test("a direct read that completes the frame hands it out and releases the buffer")
    func directReadCompletes() throws {
        let frame = lengthPrefixed([UInt8](repeating: 0x42, count: 100_000), headerSize: 4)
        var acc = FrameAccumulator(headerSize: 4, maxPayload: 1 << 20)
        #expect(try feedAll(&acc, [Array(frame[..<10])]).isEmpty)
        // The regions grow with what arrived (never by the announced length at once) until the frame is complete.
        var offset = 10
        var out: [[UInt8]] = []
        var regions = 0
        while out.isEmpty {
            let maybeRegion = acc.directReadBuffer(minimum: 1)
            let region = try #require(maybeRegion)
            #expect(region.count <= max(FrameAccumulator.initialReservation, 2 * offset))
            let n = min(region.count, frame.count - offset)
            frame[offset..<(offset + n)].withUnsafeBytes { region.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
            acc.commitDirectRead(n) { out.append(Array($0)); return true }
            offset += n
            regions += 1
        }
        #expect(offset == frame.count)
        #expect(regions > 1)
        #expect(out == [frame])
        #expect(acc.bufferedByteCount == 0)
        let noRegion = acc.directReadBuffer(minimum: 1)
        #expect(noRegion == nil)
        // The accumulator is usable afterwards.
        #expect(try feedAll(&acc, [frame]) == [frame])
    }

    @Test("a header announcing a huge frame with a few bytes behind it reserves a few KiB, not the frame", arguments: [10, 4])
    func reservationFollowsArrivals(headerSize: Int) throws {
        var acc = FrameAccumulator(headerSize: headerSize, maxPayload: 16 << 20)
        var header = [UInt8](repeating: 0, count: headerSize)
        let length = UInt32(16 << 20).bigEndian
        withUnsafeBytes(of: length) { for i in 0..<4 { header[i] = $0[i] } }
        #expect(try feedAll(&acc, [header + [UInt8](repeating: 1, count: 16)]).isEmpty)
        #expect(acc.bufferedByteCount == headerSize + 16)
        #expect(acc.reservedByteCount <= FrameAccumulator.initialReservation)
        // More arrives: the buffer at most doubles, or fits what came.
        #expect(try feedAll(&acc, [[UInt8](repeating: 2, count: 10_000)]).isEmpty)
        #expect(acc.reservedByteCount <= headerSize + 16 + 10_000 + FrameAccumulator.initialReservation)
        #expect(acc.reservedByteCount >= acc.bufferedByteCount)
    }

    @Test("no buffer is held once frames are complete", arguments: [10, 4])
    func noBufferWhileIdle(headerSize: Int) throws {
        var acc = FrameAccumulator(headerSize: headerSize, maxPayload: 1 << 20)
        let big = lengthPrefixed([UInt8](repeating: 9, count: 50_000), headerSize: headerSize)
        #expect(try feedAll(&acc, [Array(big[..<30_000])]).isEmpty)
        #expect(acc.bufferedByteCount == 30_000)
        #expect(try feedAll(&acc, [Array(big[30_000...])]) == [big])
        #expect(acc.bufferedByteCount == 0)
        let noRegion = acc.directReadBuffer(minimum: 1)
        #expect(noRegion == nil)
        // An empty read changes nothing.
        #expect(try feedAll(&acc, [[]]).isEmpty)
        #expect(acc.bufferedByteCount == 0)
    }

    @Test("the 4-byte mode reads only the length as header")
    func fourByteHeader() throws {
        // In the 10-byte mode these bytes would be one incomplete header; in the 4-byte mode they are frames.
        let stream: [UInt8] = [0, 0, 0, 1, 0xAA, 0, 0, 0, 0, 0, 0, 0, 2, 0xBB, 0xCC]
        var acc = FrameAccumulator(headerSize: 4, maxPayload: 16)
        #expect(try feedAll(&acc, [stream]) == [[0, 0, 0, 1, 0xAA], [0, 0, 0, 0], [0, 0, 0, 2, 0xBB, 0xCC]])
        #expect(acc.headerSize == 4)
        var acc10 = FrameAccumulator(maxPayload: 16)
        #expect(acc10.headerSize == FrameHeader.size)
        // 10-byte header: length 1, then 6 header bytes, then 1 payload byte = 11 bytes.
        #expect(try feedAll(&acc10, [Array(stream[..<11])]) == [Array(stream[..<11])])
    }

    @Test("onFrame returning false stops at once; the rest of that read is dropped")
    func stopping() throws {
        let frames = (0..<5).map { lengthPrefixed([UInt8($0)], headerSize: 10) }
        var acc = FrameAccumulator(maxPayload: 64)
        var seen: [[UInt8]] = []
        try frames.flatMap { $0 }.withUnsafeBytes { raw in
            try acc.feed(raw) { frame in
                seen.append(Array(frame))
                return seen.count < 2
            }
        }
        #expect(seen == Array(frames[..<2]))
        #expect(acc.bufferedByteCount == 0)
    }

    @Test("onFrame returning false for a frame completed from the pending buffer stops too")
    func stoppingFromPending() throws {
        let frames = (0..<3).map { lengthPrefixed([UInt8($0), 1, 2], headerSize: 10) }
        let stream = frames.flatMap { $0 }
        var acc = FrameAccumulator(maxPayload: 64)
        var seen: [[UInt8]] = []
        try Array(stream[..<5]).withUnsafeBytes { raw in
            try acc.feed(raw) { seen.append(Array($0)); return false }
        }
        #expect(seen.isEmpty)
        try Array(stream[5...]).withUnsafeBytes { raw in
            try acc.feed(raw) { seen.append(Array($0)); return false }
        }
        #expect(seen == [frames[0]])
        #expect(acc.bufferedByteCount == 0)
    }

    @Test("random chunking of a long random stream", arguments: [10, 4])
    func randomChunking(headerSize: Int) throws {
        var rng = TestRandom(seed: UInt64(headerSize) * 1000 + 17)
        let frames = (0..<300).map { _ in lengthPrefixed(rng.bytes(rng.int(0...3000)), headerSize: headerSize) }
        let stream = frames.flatMap { $0 }
        var chunks: [[UInt8]] = []
        var i = 0
        while i < stream.count {
            let n = min(rng.int(1...5000), stream.count - i)
            chunks.append(Array(stream[i..<(i + n)]))
            i += n
        }
        var acc = FrameAccumulator(headerSize: headerSize, maxPayload: 3000)
        #expect(try feedAll(&acc, chunks) == frames)
        #expect(acc.bufferedByteCount == 0)
    }
}

import Prometheus

extension TimerHistogram {
    /// Appends the histogram's lines in the Prometheus text format (without its `# TYPE` line), written as
    /// swift-prometheus writes a duration histogram.
    public func emit(into buffer: inout [UInt8]) {
        let (cumulative, sum) = snapshot()
        for (i, bound) in bounds.enumerated() {
            bucket(&buffer, le: Duration.nanoseconds(bound).bucketRepresentation, cumulative[i])
        }
        bucket(&buffer, le: "+Inf", cumulative[bounds.count])
        buffer.append(contentsOf: name.utf8)
        buffer.append(contentsOf: "_sum".utf8)
        labelBlock(&buffer, le: nil)
        buffer.append(contentsOf: Duration.nanoseconds(sum).bucketRepresentation.utf8)
        buffer.append(UInt8(ascii: "\n"))
        buffer.append(contentsOf: name.utf8)
        buffer.append(contentsOf: "_count".utf8)
        labelBlock(&buffer, le: nil)
        buffer.append(contentsOf: String(cumulative[bounds.count]).utf8)
        buffer.append(UInt8(ascii: "\n"))
    }

    private func bucket(_ buffer: inout [UInt8], le: String, _ count: Int) {
        buffer.append(contentsOf: name.utf8)
        buffer.append(contentsOf: "_bucket".utf8)
        labelBlock(&buffer, le: le)
        buffer.append(contentsOf: String(count).utf8)
        buffer.append(UInt8(ascii: "\n"))
    }

    /// `{labels,le="x"} `, `{labels} ` or a space alone.
    private func labelBlock(_ buffer: inout [UInt8], le: String?) {
        if renderedLabels.isEmpty && le == nil {
            buffer.append(UInt8(ascii: " "))
            return
        }
        buffer.append(UInt8(ascii: "{"))
        buffer.append(contentsOf: renderedLabels)
        if let le {
            if !renderedLabels.isEmpty { buffer.append(UInt8(ascii: ",")) }
            buffer.append(contentsOf: #"le=""#.utf8)
            buffer.append(contentsOf: le.utf8)
            buffer.append(UInt8(ascii: "\""))
        }
        buffer.append(contentsOf: "} ".utf8)
    }
}

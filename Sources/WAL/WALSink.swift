/// Where streamed WAL goes. Segments arrive in order; bytes within a segment arrive in order.
/// `closeSegment` makes the segment durable before returning.
public protocol WALSink: AnyObject {
    func openSegment(named name: String) throws
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws
    /// Makes everything written to the open segment so far durable (`--synchronous`).
    func syncSegment() throws
    /// `complete`: the whole segment was received (else it is the last, partly filled one).
    func closeSegment(complete: Bool) throws
    func finish() throws
}

extension WALSink {
    /// Sinks whose output is only durable once finished (a tar) cannot do better than that.
    public func syncSegment() throws {}
}

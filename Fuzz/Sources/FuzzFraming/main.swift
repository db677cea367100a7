// libFuzzer entry point: the input is a byte stream as a peer would send it (see Checks.swift).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    checkStream(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

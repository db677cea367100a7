// libFuzzer entry point: the input is a control byte and HTTP/1.1 request bytes (see Checks.swift).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    checkRequests(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

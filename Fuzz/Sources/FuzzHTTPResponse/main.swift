// libFuzzer entry point: the input is a slice size and an HTTP/1.1 response (see Checks.swift).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    checkResponse(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

// libFuzzer entry point: the input is a control byte and the bytes a client sent to a TLS server (see Checks.swift).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    checkServer(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

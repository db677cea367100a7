// libFuzzer entry point: the input is a control byte and the bytes of a local registry node file (see Checks.swift).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    checkNodeFile(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

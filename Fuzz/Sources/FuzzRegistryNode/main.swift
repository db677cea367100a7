// libFuzzer entry point: the input is a control byte and a service as the registries store it (see Checks.swift).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    checkNode(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

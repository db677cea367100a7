// libFuzzer entry point: the input is a control byte and the payload of a REQUEST or RESPONSE head (see Checks.swift).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    checkHeads(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

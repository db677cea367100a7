// libFuzzer entry point: the input is a SETTINGS payload (see Checks.swift).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    checkSettingsPayload(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

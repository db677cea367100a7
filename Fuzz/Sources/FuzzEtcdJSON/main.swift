// libFuzzer entry point: the input is a control byte and what etcd's JSON gateway sent (see Checks.swift).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    checkEtcd(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

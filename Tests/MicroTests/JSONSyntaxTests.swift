import Foundation
@testable import Micro
import Testing

/// The sidecar's JSON check agrees with Foundation's parser (RFC 8259 syntax, fragments allowed).
@Suite struct JSONSyntaxTests {
    static let valid = [
        #"{}"#, #"[]"#, #"{"name": "Ada"}"#, #" [1, -2.5e3, 0, 0.1, 1E+2, true, false, null, "x"] "#, #""\u00e9\n\"""#, "0", "-0",
        #"{"a":{"b":[{"c":[]}]}}"#, "\"caf\u{e9}\"", "\t\r\n{\"k\" : [ 1 , 2 ] }\n",
    ]
    static let invalid = [
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "01", "1.", ".5", "-", "1e", "+1", "tru", "nul", "True",
        "\"unterminated", "\"bad \\x escape\"", "\"\\u12g4\"", "\"tab\there\"", "[1] [2]", "{\"a\":1}}", "NaN", "'x'",
        String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
    ]

    @Test func agreesWithFoundation() {
        for text in Self.valid {
            #expect(JSONSyntax.isValid(Array(text.utf8)), "\(text.debugDescription) is JSON")
            #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil, "oracle: \(text.debugDescription)")
        }
        for text in Self.invalid {
            #expect(!JSONSyntax.isValid(Array(text.utf8)), "\(text.debugDescription) is not JSON")
        }
    }

    @Test func deepButAllowedNesting() {
        let deep = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect(JSONSyntax.isValid(Array(deep.utf8)))
    }
}

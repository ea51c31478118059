import CFuzzDriver
import KnockConfig
import KnockCore

/// libFuzzer entry: any bytes as an xt_pknock rules file. The loader must not trap; what it accepts
/// must pass rule validation; what it refuses must name the file and a line inside it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRulesFile(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let data else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data, count: count), as: UTF8.self)
    // Both parsers count "\n" and "\r\n" (one Character in Swift) as line ends.
    let lineCount = 1 + text.reduce(0) { $1 == "\n" || $1 == "\r\n" ? $0 + 1 : $0 }
    do {
        let configuration = try ConfigLoader.parseRulesFile(text, file: "fuzz.rules")
        precondition(!configuration.rules.problems().contains { $0.severity == .error }, "accepted an invalid rule")
    } catch {
        precondition(!error.diagnostics.isEmpty, "an error without diagnostics")
        for diagnostic in error.diagnostics {
            precondition(diagnostic.file == "fuzz.rules" && diagnostic.isError, "diagnostic without the file")
            if let line = diagnostic.line { precondition(line >= 1 && line <= max(1, lineCount), "line outside the file") }
        }
    }
    return 0
}

/// The executable's entry point (SwiftPM points `main` here): runs libFuzzer with this target.
@_cdecl("FuzzRulesFile_main")
func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, count in fuzzRulesFile(data, count) }
}

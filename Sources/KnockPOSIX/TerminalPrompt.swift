#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Asking for a secret on the controlling terminal with echo off, as ssh and gpg do.
public enum TerminalPrompt {
    /// Whether standard input is a terminal (the only case in which a client should ask).
    ///
    /// The corresponding C function is `isatty`.
    public static var standardInputIsTerminal: Bool { isatty(STDIN_FILENO) == 1 }

    /// Writes `prompt` to `/dev/tty`, reads one line there with echo off and restores the terminal.
    ///
    /// Returns the line without its newline (at most 4096 bytes). The corresponding C functions
    /// are `tcgetattr` and `tcsetattr`.
    public static func readHiddenLine(prompt: String) throws(SystemCallError) -> [UInt8] {
        let descriptor = unsafe open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)
        if descriptor < 0 {
            throw SystemCallError(operation: "open", subject: "no terminal to ask for the secret on", errno: lastErrno())
        }
        defer { closeDescriptor(descriptor) }
        var saved = termios()
        if unsafe tcgetattr(descriptor, &saved) != 0 {
            throw SystemCallError(operation: "tcgetattr", subject: "/dev/tty", errno: lastErrno())
        }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        quiet.c_lflag |= tcflag_t(ECHONL)
        if unsafe tcsetattr(descriptor, TCSAFLUSH, &quiet) != 0 {
            throw SystemCallError(operation: "tcsetattr", subject: "turning echo off", errno: lastErrno())
        }
        defer { _ = unsafe tcsetattr(descriptor, TCSAFLUSH, &saved) }
        let promptBytes = Array(prompt.utf8)
        _ = unsafe promptBytes.withUnsafeBytes { unsafe write(descriptor, $0.baseAddress, $0.count) }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while line.count < 4096 {
            let count = unsafe read(descriptor, &byte, 1)
            if count < 0 && lastErrno() == EINTR { continue }
            if count < 0 { throw SystemCallError(operation: "read", subject: "/dev/tty", errno: lastErrno()) }
            if count == 0 || byte == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        return line
    }
}

#if canImport(Glibc)
    import CKnockPOSIX
    import Glibc

    /// How a child run by ``ChildProcess/run(_:arguments:environment:timeout:outputLimit:drainTime:killGrace:)`` ended.
    public enum ChildTermination: Equatable, Sendable {
        /// It exited with this status.
        case exited(Int32)
        /// A signal it did not get from us ended it.
        case signalled(Int32)
        /// It ran past its timeout; its process group got SIGTERM, then SIGKILL.
        case timedOut
        /// It ran past its timeout and was still not reaped after SIGKILL and another grace period.
        case unreaped
    }

    /// One finished run: how it ended and what it wrote to stdout and stderr (interleaved, capped).
    public struct ChildRun: Equatable, Sendable {
        /// How it ended.
        public var termination: ChildTermination
        /// The first `outputLimit` bytes of its output.
        public var output: [UInt8]
        /// Whether it wrote more than was kept.
        public var outputTruncated: Bool
    }

    /// Runs programs the way a daemon should run hooks: spawned directly with `posix_spawn`, never
    /// through a fork of the daemon's own threads.
    ///
    /// The child gets exactly three descriptors: stdin `/dev/null`, and stdout and stderr on one pipe
    /// the caller reads; everything else the daemon has open is closed in the child
    /// (`posix_spawn_file_actions_addclosefrom_np`, glibc 2.34 and later), whether or not it is marked
    /// close-on-exec. It leads a process group of its own (`POSIX_SPAWN_SETPGROUP`), so a timeout reaches
    /// everything it started; its signal mask is empty and every signal has its default action (the
    /// daemon ignores some, and ignored signals survive exec).
    ///
    /// A run is over when the direct child exits: background processes it left behind may keep the
    /// pipe open, so after the exit the pipe is drained for at most `drainTime` and then closed (what
    /// they write later is lost, or they get EPIPE). Every wait is bounded.
    public enum ChildProcess {
        /// Runs `path` with `arguments` (argv[1...]) and exactly `environment`, for at most `timeout`.
        ///
        /// At the timeout the child's process group gets SIGTERM, and SIGKILL `killGrace` later. Throws
        /// only when the child could not be started (`posix_spawn`, or the pipe).
        /// The corresponding C functions are `posix_spawn`, `waitpid` and `poll`.
        public static func run(
            _ path: String, arguments: [String], environment: [String: String], timeout: Duration, outputLimit: Int,
            drainTime: Duration = .milliseconds(100), killGrace: Duration = .seconds(1)
        ) throws(SystemCallError) -> ChildRun {
            var ends: [Int32] = [-1, -1]
            _ = try retryingOnInterrupt("pipe") { unsafe ends.withUnsafeMutableBufferPointer { unsafe pipe($0.baseAddress) } }
            let (readEnd, writeEnd) = (ends[0], ends[1])
            // Close-on-exec for any other program the daemon might start; the hook's copies are made by dup2.
            _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
            defer { close(readEnd) }

            let pid: pid_t
            do {
                defer { close(writeEnd) }
                pid = try spawn(path, arguments: arguments, environment: environment, output: writeEnd)
            }

            var output = OutputBuffer(limit: outputLimit)
            var termination: ChildTermination?
            var timedOut = false
            var killed = false
            var deadline = ContinuousClock.now + timeout
            var open = true
            while termination == nil {
                var status: Int32 = 0
                let reaped = unsafe waitpid(pid, &status, WNOHANG)
                if reaped == pid {
                    // After a timeout, whatever of its group ignored SIGTERM goes too. (A process
                    // group ID stays reserved while any member lives, so this reaches only them.)
                    if timedOut && !killed { kill(-pid, SIGKILL) }
                    termination = timedOut ? .timedOut : decode(status)
                    break
                }
                if reaped == -1 && lastErrno() != EINTR {
                    // ECHILD: someone else reaped it (nothing in pknockd does); treat it as gone.
                    termination = timedOut ? .timedOut : .exited(-1)
                    break
                }
                let now = ContinuousClock.now
                if now >= deadline {
                    if !timedOut {
                        timedOut = true
                        kill(-pid, SIGTERM)
                        deadline = now + killGrace
                    } else if !killed {
                        killed = true
                        kill(-pid, SIGKILL)
                        deadline = now + killGrace
                    } else {
                        termination = .unreaped
                        break
                    }
                }
                // Read output while waiting, so a chatty child never blocks on a full pipe; wake at least
                // every 20 ms to look for its exit.
                let slice = min(.milliseconds(20), max(.zero, deadline - ContinuousClock.now))
                if open {
                    open = output.read(from: readEnd, waitingAtMost: slice)
                } else {
                    _ = unsafe poll(nil, 0, milliseconds(slice))
                }
            }
            // The child is gone; what it wrote is in the pipe, unless a background process still holds
            // the write end: then take what comes within `drainTime` and stop.
            let drainEnd = ContinuousClock.now + drainTime
            while open {
                let left = drainEnd - ContinuousClock.now
                if left <= .zero { break }
                open = output.read(from: readEnd, waitingAtMost: left)
            }
            return ChildRun(termination: termination ?? .unreaped, output: output.bytes, outputTruncated: output.truncated)
        }

        /// Starts the child; returns its pid (also its process group).
        private static func spawn(
            _ path: String, arguments: [String], environment: [String: String], output: Int32
        ) throws(SystemCallError) -> pid_t {
            var actions = posix_spawn_file_actions_t()
            var attributes = posix_spawnattr_t()
            guard unsafe posix_spawn_file_actions_init(&actions) == 0 else {
                throw SystemCallError(operation: "posix_spawn_file_actions_init", errno: ENOMEM)
            }
            defer { _ = unsafe posix_spawn_file_actions_destroy(&actions) }
            guard unsafe posix_spawnattr_init(&attributes) == 0 else {
                throw SystemCallError(operation: "posix_spawnattr_init", errno: ENOMEM)
            }
            defer { _ = unsafe posix_spawnattr_destroy(&attributes) }

            var failures: [Int32] = []
            failures.append(unsafe posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0))
            failures.append(unsafe posix_spawn_file_actions_adddup2(&actions, output, 1))
            failures.append(unsafe posix_spawn_file_actions_adddup2(&actions, output, 2))
            failures.append(unsafe CKnockPOSIX_spawn_file_actions_addclosefrom(&actions, 3))
            failures.append(
                unsafe posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)))
            failures.append(unsafe posix_spawnattr_setpgroup(&attributes, 0))
            var none = sigset_t()
            var all = sigset_t()
            _ = unsafe sigemptyset(&none)
            _ = unsafe sigfillset(&all)
            failures.append(unsafe posix_spawnattr_setsigmask(&attributes, &none))
            failures.append(unsafe posix_spawnattr_setsigdefault(&attributes, &all))
            if let failure = failures.first(where: { $0 != 0 }) {
                throw SystemCallError(operation: "posix_spawn setup", subject: path, errno: failure)
            }

            let argv = unsafe ([path] + arguments).map { unsafe strdup($0) } + [nil]
            let envp = unsafe environment.sorted { $0.key < $1.key }.map { unsafe strdup($0.key + "=" + $0.value) } + [nil]
            defer {
                for pointer in unsafe argv { unsafe free(pointer) }
                for pointer in unsafe envp { unsafe free(pointer) }
            }
            var pid: pid_t = 0
            let result = unsafe posix_spawn(&pid, path, &actions, &attributes, argv, envp)
            guard result == 0 else { throw SystemCallError(operation: "posix_spawn", subject: path, errno: result) }
            return pid
        }

        /// The termination a `waitpid` status describes.
        private static func decode(_ status: Int32) -> ChildTermination {
            // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import (they are macros).
            let signal = status & 0x7f
            if signal == 0 { return .exited((status >> 8) & 0xff) }
            return .signalled(signal)
        }
    }

    /// `duration` in whole milliseconds, rounded up, for `poll`.
    private func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        return Int32(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }

    /// The output kept so far, and whether more came than the limit.
    private struct OutputBuffer {
        let limit: Int
        var bytes: [UInt8] = []
        var truncated = false

        init(limit: Int) { self.limit = max(0, limit) }

        /// Waits up to `duration` for the pipe, then reads what is there; false at end of file (or an error).
        mutating func read(from descriptor: Int32, waitingAtMost duration: Duration) -> Bool {
            var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = unsafe poll(&request, 1, milliseconds(duration))
            if ready <= 0 { return ready == 0 || lastErrno() == EINTR }
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = unsafe chunk.withUnsafeMutableBytes { unsafe Glibc.read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    let room = limit - bytes.count
                    if room > 0 { bytes += chunk[..<min(count, room)] }
                    if count > room { truncated = true }
                    continue
                }
                if count == 0 { return false }
                let code = lastErrno()
                if code == EINTR { continue }
                return code == EAGAIN || code == EWOULDBLOCK
            }
        }
    }
#endif

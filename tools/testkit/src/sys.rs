//! The few system calls tests and benchmarks share: this process's CPU
//! time, a socket's receive buffer.

use std::os::fd::RawFd;

/// Seconds of a `timeval`.
pub fn seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 * 1e-6
}

/// CPU time (user, system) of this process so far, in seconds.
pub fn cpu_seconds() -> (f64, f64) {
    // SAFETY: rusage is plain data that getrusage fills in.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    (seconds(ru.ru_utime), seconds(ru.ru_stime))
}

/// Sets an integer socket option on `fd`.
pub fn setsockopt_int(fd: RawFd, level: i32, opt: i32, value: libc::c_int) -> std::io::Result<()> {
    // SAFETY: a live c_int and its size; the caller owns the fd.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sets the receive buffer of `fd` to `bytes` (the kernel doubles it):
/// `SO_RCVBUFFORCE` (root, beyond `rmem_max`), else `SO_RCVBUF`.
pub fn set_rcvbuf(fd: RawFd, bytes: usize) -> std::io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, value)
        .or_else(|_| setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, value))
}

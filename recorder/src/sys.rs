//! The recorder's system calls that the standard library does not wrap:
//! socket options, `poll`, `recv` with `MSG_TRUNC`, `getrusage`, `uname`.
//! One place for each, so that every `unsafe` block and its reasoning is
//! written once.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `SO_MEMINFO` (asm-generic/socket.h; the same on x86, arm and powerpc).
const SO_MEMINFO: libc::c_int = 55;
/// `SK_MEMINFO_VARS`
const SK_MEMINFO_VARS: usize = 9;
/// `SK_MEMINFO_DROPS`: the index of the drop count in `SO_MEMINFO`.
const SK_MEMINFO_DROPS: usize = 8;

/// Sets the receive buffer of `socket` with `SO_RCVBUFFORCE` (needs
/// CAP_NET_ADMIN, ignores rmem_max), falling back to `SO_RCVBUF`; returns
/// whether it had to fall back.
pub fn set_rcvbuf(socket: &impl AsRawFd, bytes: usize) -> io::Result<bool> {
    // The kernel doubles the value for bookkeeping overhead; ask for half.
    let value = libc::c_int::try_from(bytes / 2).unwrap_or(libc::c_int::MAX);
    let set = |opt| {
        // SAFETY: value is a c_int living across the call and its size is
        // passed; an fd that is not an open socket only makes the call fail.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    match set(libc::SO_RCVBUFFORCE) {
        Ok(()) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => set(libc::SO_RCVBUF).map(|()| true),
        Err(e) => Err(e),
    }
}

/// Receive drops of `socket` (datagrams), from `SO_MEMINFO`; `None` when
/// the kernel does not tell.
pub fn socket_drops(socket: &impl AsRawFd) -> Option<u32> {
    let mut info = [0u32; SK_MEMINFO_VARS];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: info is writable for len bytes and len is passed by pointer
    // as getsockopt requires; a bad fd only makes the call fail.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    (rc == 0 && len as usize >= std::mem::size_of_val(&info)).then_some(info[SK_MEMINFO_DROPS])
}

/// Waits until `fd` is readable or `timeout` passes; `Ok(false)` on timeout
/// or signal.
pub fn poll_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis())
        .unwrap_or(libc::c_int::MAX)
        .max(1);
    // SAFETY: pfd is a valid pollfd array of length 1 for the call.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    match rc {
        n if n > 0 => Ok(true),
        0 => Ok(false),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// One non-blocking `recv` with `MSG_TRUNC` on `socket`: returns the datagram's
/// real length (which may exceed the buffer) and whether it was truncated.
pub fn recv_datagram(socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, bool)> {
    // SAFETY: buf is valid for writes of buf.len() bytes for the call.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    Ok((n, n > buf.len()))
}

/// User and system CPU time of this process so far.
pub fn cpu_time() -> (Duration, Duration) {
    // SAFETY: rusage is plain data that getrusage fills in.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let d = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (d(usage.ru_utime), d(usage.ru_stime))
}

/// This machine's host name and kernel release; empty when `uname` fails.
pub fn uname() -> (String, String) {
    // SAFETY: utsname is plain data; uname fills it with NUL-terminated
    // strings on success.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return (String::new(), String::new());
        }
        let s = |f: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(f.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        (s(&u.nodename), s(&u.release))
    }
}

/// CLOCK_REALTIME in nanoseconds since the epoch (0 before it).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

//! The recorder's netlink socket: creation, receive buffer, registration.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use imp2_format::wire::{
    Config, Frames, NlError, NlHeader, abi, register_message, unregister_message,
};
use netlink_sys::{Socket, SocketAddr};

/// A registration failure, explained for the user.
#[derive(Debug)]
pub struct RegisterError(pub String);

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RegisterError {}

/// The bound socket and where REGISTER goes.
#[derive(Debug)]
pub struct ImpSocket {
    /// The netlink socket.
    pub socket: Socket,
    /// Netlink unit (protocol).
    pub unit: i32,
    /// Port id of the producer: 0 for the kernel module.
    pub peer: u32,
    /// Our own port id.
    pub port_id: u32,
    /// Receive buffer size the kernel granted, bytes.
    pub rcvbuf: usize,
    /// Whether `SO_RCVBUFFORCE` was refused and `SO_RCVBUF` used instead.
    pub rcvbuf_capped: bool,
    seq: u32,
}

impl ImpSocket {
    /// Opens and binds a socket on `unit`, sizes its receive buffer to
    /// `rcvbuf` bytes and suppresses ENOBUFS (losses are found from the
    /// trailers instead, exactly).
    pub fn open(unit: i32, peer: u32, rcvbuf: usize) -> Result<ImpSocket, RegisterError> {
        let mut socket = Socket::new(unit as isize).map_err(|e| {
            if e.raw_os_error() == Some(libc::EPROTONOSUPPORT) {
                RegisterError(format!(
                    "netlink unit {unit} is not available: the imp2 module is not loaded \
                     (load it with `insmod kmod/imp2.ko` or `modprobe imp2`)"
                ))
            } else {
                RegisterError(format!("cannot open a netlink socket on unit {unit}: {e}"))
            }
        })?;
        let addr = socket
            .bind_auto()
            .map_err(|e| RegisterError(format!("cannot bind the netlink socket: {e}")))?;
        let rcvbuf_capped = set_rcvbuf(&socket, rcvbuf).map_err(|e| {
            RegisterError(format!(
                "cannot set the receive buffer to {rcvbuf} bytes: {e}"
            ))
        })?;
        let granted = socket
            .get_rx_buf_sz()
            .map_err(|e| RegisterError(format!("cannot read the receive buffer size: {e}")))?;
        socket
            .set_no_enobufs(true)
            .map_err(|e| RegisterError(format!("cannot set NETLINK_NO_ENOBUFS: {e}")))?;
        Ok(ImpSocket {
            socket,
            unit,
            peer,
            port_id: addr.port_number(),
            rcvbuf: granted,
            rcvbuf_capped,
            seq: 0,
        })
    }

    /// Whether the producer's socket still exists: the kernel (port 0)
    /// always does; a user-space producer (imp2-loadgen) is looked up in
    /// `/proc/net/netlink` by unit and port id. `None` when that table
    /// cannot be read.
    pub fn peer_exists(&self) -> Option<bool> {
        if self.peer == 0 {
            return Some(true);
        }
        let table = std::fs::read_to_string("/proc/net/netlink").ok()?;
        Some(netlink_table_has(&table, self.unit, self.peer))
    }

    fn peer_addr(&self) -> SocketAddr {
        SocketAddr::new(self.peer, 0)
    }

    fn send(&mut self, msg: &[u8], what: &str) -> Result<(), RegisterError> {
        self.socket.send_to(msg, &self.peer_addr(), 0).map(drop).map_err(|e| {
            if e.raw_os_error() == Some(libc::ECONNREFUSED) && self.peer != 0 {
                RegisterError(format!(
                    "no producer listens on port {} of netlink unit {} (is imp2-loadgen running?)",
                    self.peer, self.unit
                ))
            } else {
                RegisterError(format!("cannot send {what}: {e}"))
            }
        })
    }

    /// Sends REGISTER and waits up to `timeout` for its ACK. Batches that
    /// arrive meanwhile (capture starts before the ACK is queued) are passed
    /// to `on_datagram`.
    pub fn register(
        &mut self,
        config: &Config,
        timeout: Duration,
        on_datagram: &mut dyn FnMut(&[u8], bool),
    ) -> Result<(), RegisterError> {
        self.seq += 1;
        let msg = register_message(config, self.seq, self.port_id);
        self.send(&msg, "REGISTER")?;
        match self.wait_ack(self.seq, timeout, on_datagram)? {
            0 => Ok(()),
            errno => Err(RegisterError(explain_register_errno(
                -errno, self.unit, config,
            ))),
        }
    }

    /// Sends UNREGISTER (ACK requested) and returns its sequence number; the
    /// caller keeps receiving the final batches until the ACK shows up.
    pub fn send_unregister(&mut self) -> Result<u32, RegisterError> {
        self.seq += 1;
        let msg = unregister_message(self.seq, self.port_id);
        self.send(&msg, "UNREGISTER")?;
        Ok(self.seq)
    }

    /// Receives until the ACK (NLMSG_ERROR) for request `seq` arrives;
    /// returns its errno (0 for success, else negative).
    fn wait_ack(
        &mut self,
        seq: u32,
        timeout: Duration,
        on_datagram: &mut dyn FnMut(&[u8], bool),
    ) -> Result<i32, RegisterError> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; abi::BATCH_BYTES_MAX as usize];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RegisterError(format!(
                    "no answer from the producer on netlink unit {} within {} s",
                    self.unit,
                    timeout.as_secs_f32()
                )));
            }
            if !poll_readable(self.socket.as_raw_fd(), left)
                .map_err(|e| RegisterError(format!("poll: {e}")))?
            {
                continue;
            }
            let (len, truncated) = recv_datagram(&self.socket, &mut buf)
                .map_err(|e| RegisterError(format!("receiving the ACK: {e}")))?;
            let datagram = &buf[..len.min(buf.len())];
            let ack = find_ack(datagram, seq);
            if let Some(errno) = ack {
                // The ACK comes alone; anything else was a batch.
                if datagram.len() > abi::nlmsg_align(abi::NLMSG_HDRLEN + 4 + abi::NLMSG_HDRLEN) {
                    on_datagram(datagram, truncated);
                }
                return Ok(errno);
            }
            on_datagram(datagram, truncated);
        }
    }
}

/// The errno of an ACK answering request `seq` in `datagram`, if any.
fn find_ack(datagram: &[u8], seq: u32) -> Option<i32> {
    Frames::new(datagram)
        .flatten()
        .filter(|frame| frame.header.msg_type == abi::NLMSG_ERROR)
        .find_map(|frame| match NlError::parse(frame.payload)? {
            NlError {
                errno,
                request: Some(NlHeader { seq: s, .. }),
            } if s == seq => Some(errno),
            NlError {
                errno,
                request: None,
            } if frame.header.seq == seq => Some(errno),
            _ => None,
        })
}

fn explain_register_errno(errno: i32, unit: i32, config: &Config) -> String {
    match errno {
        libc::EPERM => "registering needs CAP_NET_ADMIN: run imp2-record as root or give it \
                        cap_net_admin (setcap cap_net_admin+ep imp2-record)"
            .into(),
        libc::EBUSY => "another recorder is already attached to the imp2 module \
                        (see /proc/net/imp2 for its port id)"
            .into(),
        libc::EPROTO => format!(
            "the producer on unit {unit} speaks another imp2 ABI version (this recorder speaks \
             version {}): rebuild the module and the recorder from the same tree",
            config.abi_version
        ),
        libc::EINVAL => match config.validate() {
            Err(e) => format!("the producer refused the configuration: {e}"),
            Ok(()) => "the producer refused the configuration (EINVAL)".into(),
        },
        e => format!(
            "the producer refused REGISTER: {}",
            io::Error::from_raw_os_error(e)
        ),
    }
}

/// Whether `/proc/net/netlink` text lists a socket of protocol `unit` with
/// port id `port` (columns: `sk Eth Pid Groups ...`, decimal Eth and Pid).
fn netlink_table_has(table: &str, unit: i32, port: u32) -> bool {
    table.lines().skip(1).any(|line| {
        let mut cols = line.split_whitespace().skip(1);
        let eth = cols.next().and_then(|c| c.parse::<i32>().ok());
        let pid = cols.next().and_then(|c| c.parse::<u32>().ok());
        eth == Some(unit) && pid == Some(port)
    })
}

/// Sets the receive buffer with `SO_RCVBUFFORCE` (needs CAP_NET_ADMIN,
/// ignores rmem_max), falling back to `SO_RCVBUF`; returns whether it had
/// to fall back.
pub fn set_rcvbuf(socket: &Socket, bytes: usize) -> io::Result<bool> {
    // The kernel doubles the value for bookkeeping overhead; ask for half.
    let value = libc::c_int::try_from(bytes / 2).unwrap_or(libc::c_int::MAX);
    let set = |opt| {
        // SAFETY: fd is a valid open socket for the duration of the call;
        // value is a c_int and its size is passed.
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

/// Waits until `fd` is readable or `timeout` passes; `Ok(false)` on timeout
/// or signal.
pub fn poll_readable(fd: i32, timeout: Duration) -> io::Result<bool> {
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

/// One non-blocking `recv` with `MSG_TRUNC`: returns the datagram's real
/// length (which may exceed the buffer) and whether it was truncated.
pub fn recv_datagram(socket: &Socket, buf: &mut [u8]) -> io::Result<(usize, bool)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_netlink_table_is_searched_by_unit_and_port() {
        let table = "\
sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode
ffff8d3e0a1c9800 0   1234       00000000 0        0        0     2        0        13513
ffff8d3e0a1cd000 31  4321       00000000 0        0        0     2        0        27001
";
        assert!(netlink_table_has(table, 31, 4321));
        assert!(!netlink_table_has(table, 31, 1234));
        assert!(!netlink_table_has(table, 0, 4321));
        assert!(!netlink_table_has("", 31, 4321));
    }

    /// The check against the real kernel's table: a socket of our own is
    /// listed while it is open and gone once it is closed.
    #[test]
    fn a_closed_producer_socket_is_seen_gone() {
        let unit = libc::NETLINK_USERSOCK;
        let mut producer = Socket::new(unit as isize).expect("netlink socket");
        let port = producer.bind_auto().expect("bind").port_number();
        let recorder = ImpSocket::open(unit, port, 1 << 16).expect("recorder socket");
        assert_eq!(recorder.peer_exists(), Some(true));
        drop(producer);
        assert_eq!(recorder.peer_exists(), Some(false));
    }
}

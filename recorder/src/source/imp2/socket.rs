//! The recorder's netlink socket: creation, receive buffer, registration.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use imp2_format::wire::{
    Frames, NlError, NlHeader, Register, abi, register_filtered_message, unregister_message,
};
use netlink_sys::{Socket, SocketAddr};

use crate::source::netlink;
use crate::sys::{poll_readable, recv_datagram};

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
        let socket = Socket::new(unit as isize).map_err(|e| {
            if e.raw_os_error() == Some(libc::EPROTONOSUPPORT) {
                RegisterError(format!(
                    "netlink unit {unit} is not available: the imp2 module is not loaded \
                     (load it with `insmod kmod/imp2.ko` or `modprobe imp2`)"
                ))
            } else {
                RegisterError(format!("cannot open a netlink socket on unit {unit}: {e}"))
            }
        })?;
        let bound = netlink::bind(socket, "netlink", rcvbuf).map_err(RegisterError)?;
        Ok(ImpSocket {
            socket: bound.socket,
            unit,
            peer,
            port_id: bound.port_id,
            rcvbuf: bound.rcvbuf,
            rcvbuf_capped: bound.rcvbuf_capped,
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
        register: &Register,
        timeout: Duration,
        on_datagram: &mut dyn FnMut(&[u8], bool),
    ) -> Result<(), RegisterError> {
        self.seq += 1;
        let msg = register_filtered_message(register, self.seq, self.port_id);
        self.send(&msg, "REGISTER")?;
        match self.wait_ack(self.seq, timeout, on_datagram)? {
            0 => Ok(()),
            errno => Err(RegisterError(explain_register_errno(
                -errno, self.unit, register,
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

fn explain_register_errno(errno: i32, unit: i32, register: &Register) -> String {
    let config = &register.config;
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
        libc::EINVAL => match Register::parse(&register.to_bytes()) {
            Err(e) => format!("the producer refused the configuration: {e}"),
            // A module older than filters refuses the flag that announces
            // one; a current one would have refused a bad program here.
            Ok(r) if r.filter.is_some() => "the producer refused the capture filter (EINVAL):                  an imp2 module older than this recorder has no filters (update it, or                  capture without an expression and -i)"
                .into(),
            Ok(_) => "the producer refused the configuration (EINVAL)".into(),
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

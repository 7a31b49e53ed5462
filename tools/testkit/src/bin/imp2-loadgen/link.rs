//! The loadgen's netlink socket: the control conversation (REGISTER,
//! UNREGISTER, their ACKs) answered exactly as the module answers it, and
//! the sends of batches to the attached recorder.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use imp2_format::wire::abi;
use imp2_format::wire::{BatchMessage, BatchWalker, Config, NlHeader, Register, ack_message};
use netlink_sys::{Socket, SocketAddr};

/// Where batches go: a recorder's socket or nowhere (`--dry-run`).
pub trait Channel {
    /// One non-blocking send (`MSG_DONTWAIT`) of a whole datagram.
    fn send(&mut self, datagram: &[u8]) -> io::Result<()>;

    /// Sends, retrying while the receiver's buffer is full (`EAGAIN`)
    /// until `deadline`; then fails with the last error.
    fn send_until(&mut self, datagram: &[u8], deadline: Instant) -> io::Result<()>;

    /// Answers pending control messages without blocking; returns the
    /// recorder's UNREGISTER request if one arrived (not yet acknowledged).
    fn poll_control(&mut self) -> io::Result<Option<NlHeader>>;

    /// Waits up to `timeout` for control messages, answering them; returns
    /// early with the recorder's UNREGISTER request if one arrives.
    fn wait_control(&mut self, timeout: Duration) -> io::Result<Option<NlHeader>>;
}

/// The sink of `--dry-run`: every send succeeds, nothing ever arrives.
#[derive(Debug, Default)]
pub struct DrySink {
    /// Bytes "sent", so that building cannot be optimised away.
    pub bytes: u64,
}

impl Channel for DrySink {
    fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        self.bytes += datagram.len() as u64;
        Ok(())
    }

    fn send_until(&mut self, datagram: &[u8], _deadline: Instant) -> io::Result<()> {
        self.send(datagram)
    }

    fn poll_control(&mut self) -> io::Result<Option<NlHeader>> {
        Ok(None)
    }

    fn wait_control(&mut self, timeout: Duration) -> io::Result<Option<NlHeader>> {
        std::thread::sleep(timeout);
        Ok(None)
    }
}

/// Counters of the control conversation.
#[derive(Debug, Default, Clone, Copy)]
pub struct ControlStats {
    /// REGISTER requests refused for their config (EINVAL/EPROTO).
    pub refused: u64,
    /// REGISTER requests refused with EBUSY (a recorder was attached).
    pub busy: u64,
    /// Other requests answered with an error.
    pub other_errors: u64,
}

/// A bound netlink socket speaking the module's side of the protocol.
#[derive(Debug)]
pub struct Link {
    sock: Socket,
    port_id: u32,
    recorder: Option<(u32, Config)>,
    rx: Vec<u8>,
    /// What the control conversation saw.
    pub stats: ControlStats,
}

/// Biggest control datagram read; longer ones are truncated (and their
/// messages then fail to parse, which is answered as the module would).
const RX_BYTES: usize = 64 * 1024;

/// How long an ACK may wait for room in the recorder's buffer.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

fn errno_of(err: &io::Error) -> i32 {
    err.raw_os_error().unwrap_or(0)
}

impl Link {
    /// Opens a socket on netlink `unit`, bound to `port` (kernel-assigned
    /// when `None`).
    pub fn open(unit: i32, port: Option<u32>) -> io::Result<Link> {
        let mut sock = Socket::new(unit as isize)?;
        let mut addr = SocketAddr::new(port.unwrap_or(0), 0);
        sock.bind(&addr)?;
        sock.get_address(&mut addr)?;
        Ok(Link {
            sock,
            port_id: addr.port_number(),
            recorder: None,
            rx: vec![0; RX_BYTES],
            stats: ControlStats::default(),
        })
    }

    /// Our port id.
    pub fn port_id(&self) -> u32 {
        self.port_id
    }

    /// The attached recorder's port id.
    pub fn recorder(&self) -> Option<u32> {
        self.recorder.map(|(port, _)| port)
    }

    /// Sets `SO_SNDBUF` (`SO_SNDBUFFORCE` first, which needs CAP_NET_ADMIN
    /// but ignores `wmem_max`). A datagram longer than the send buffer less
    /// 32 bytes is refused with EMSGSIZE by netlink.
    pub fn set_sndbuf(&self, bytes: usize) -> io::Result<()> {
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        for opt in [libc::SO_SNDBUFFORCE, libc::SO_SNDBUF] {
            // SAFETY: `value` is a live c_int and its size is passed along;
            // the fd is owned by `self.sock`.
            let rc = unsafe {
                libc::setsockopt(
                    self.sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&raw const value).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                return Ok(());
            }
        }
        Err(io::Error::last_os_error())
    }

    /// Current `SO_SNDBUF` (as the kernel doubled it).
    pub fn sndbuf(&self) -> io::Result<usize> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` are live and `len` holds the size of
        // `value`; the fd is owned by `self.sock`.
        let rc = unsafe {
            libc::getsockopt(
                self.sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&raw mut value).cast(),
                &raw mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(value.max(0) as usize)
    }

    /// Waits until the socket is readable or `timeout` passes.
    fn readable(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `pfd` is one live pollfd and we pass a count of 1.
        let rc = unsafe { libc::poll(&raw mut pfd, 1, ms) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(err);
        }
        Ok(rc > 0)
    }

    /// Sends `datagram` to `port`, retrying on EAGAIN until `deadline`.
    fn send_to_until(&self, datagram: &[u8], port: u32, deadline: Instant) -> io::Result<()> {
        let addr = SocketAddr::new(port, 0);
        let mut pause = Duration::from_micros(50);
        loop {
            match self.sock.send_to(datagram, &addr, libc::MSG_DONTWAIT) {
                Ok(_) => return Ok(()),
                Err(e) if errno_of(&e) == libc::EAGAIN || errno_of(&e) == libc::EINTR => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(e);
                    }
                    std::thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(Duration::from_millis(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Answers `request` from `port` with `errno` (0: ACK).
    fn ack(&self, request: &NlHeader, errno: i32, port: u32) -> io::Result<()> {
        // Like netlink_ack(): the answer carries the requester's port id.
        let msg = ack_message(request, errno, port);
        match self.send_to_until(&msg, port, Instant::now() + ACK_TIMEOUT) {
            Ok(()) => Ok(()),
            // The requester is gone: nothing to answer.
            Err(e) if errno_of(&e) == libc::ECONNREFUSED => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Acknowledges the recorder's UNREGISTER and detaches it.
    pub fn ack_unregister(&mut self, request: &NlHeader) -> io::Result<()> {
        if let Some((port, _)) = self.recorder.take() {
            if request.flags & abi::NLM_F_ACK != 0 {
                self.ack(request, 0, port)?;
            }
        }
        Ok(())
    }

    /// Reads and answers one datagram if one is queued. Returns `Some` with
    /// the recorder's UNREGISTER (left for the caller to acknowledge).
    fn read_one(&mut self) -> io::Result<Option<Option<NlHeader>>> {
        let (n, addr) = {
            let mut buf: &mut [u8] = &mut self.rx;
            match self.sock.recv_from(&mut buf, libc::MSG_DONTWAIT) {
                Ok(v) => v,
                Err(e)
                    if errno_of(&e) == libc::EAGAIN
                        || errno_of(&e) == libc::EINTR
                        || errno_of(&e) == libc::ENOBUFS =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        };
        let sender = addr.port_number();
        let n = n.min(self.rx.len());
        // Collect what to answer first: the walker borrows the buffer.
        let mut answers: Vec<(NlHeader, i32)> = Vec::new();
        let mut unregister = None;
        for item in BatchWalker::new(&self.rx[..n]) {
            let Ok(item) = item else {
                // Framing broken: netlink_rcv_skb() stops there too.
                break;
            };
            let h = item.header;
            // netlink_rcv_skb() skips non-requests and control types.
            if h.flags & abi::NLM_F_REQUEST == 0 || h.msg_type < abi::NLMSG_MIN_TYPE {
                continue;
            }
            let payload = match item.message {
                BatchMessage::Unknown { payload, .. } => payload,
                _ => &[][..],
            };
            let errno = match h.msg_type {
                abi::MSG_REGISTER => {
                    if self.recorder.is_some() {
                        self.stats.busy += 1;
                        -libc::EBUSY
                    } else {
                        // Checked as the module checks it, filter extension
                        // included; but this stand-in does not run capture
                        // filters (the VM test covers the module's), so it
                        // refuses one rather than pretend to apply it.
                        match Register::parse(payload) {
                            Ok(r) if r.filter.is_none() => {
                                self.recorder = Some((sender, r.config));
                                0
                            }
                            Ok(_) => {
                                self.stats.refused += 1;
                                -libc::EOPNOTSUPP
                            }
                            Err(e) => {
                                self.stats.refused += 1;
                                -e.errno()
                            }
                        }
                    }
                }
                abi::MSG_UNREGISTER => {
                    if self.recorder() == Some(sender) {
                        unregister = Some(h);
                        continue;
                    }
                    self.stats.other_errors += 1;
                    -libc::ENOENT
                }
                _ => {
                    self.stats.other_errors += 1;
                    -libc::EOPNOTSUPP
                }
            };
            // Like netlink_rcv_skb(): errors are always answered, success
            // only when an ACK was asked for.
            if errno != 0 || h.flags & abi::NLM_F_ACK != 0 {
                answers.push((h, errno));
            }
        }
        for (h, errno) in answers {
            self.ack(&h, errno, sender)?;
        }
        Ok(Some(unregister))
    }

    /// Waits for a valid REGISTER until `timeout`, answering the refused
    /// ones; returns the recorder's port id and config.
    pub fn wait_register(&mut self, timeout: Duration) -> io::Result<Option<(u32, Config)>> {
        let deadline = Instant::now() + timeout;
        loop {
            while self.read_one()?.is_some() {
                if let Some(found) = self.recorder {
                    return Ok(Some(found));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.readable(deadline - now)?;
        }
    }
}

impl Channel for Link {
    fn send(&mut self, datagram: &[u8]) -> io::Result<()> {
        let port = self.recorder().ok_or(io::ErrorKind::NotConnected)?;
        self.sock
            .send_to(datagram, &SocketAddr::new(port, 0), libc::MSG_DONTWAIT)
            .map(|_| ())
    }

    fn send_until(&mut self, datagram: &[u8], deadline: Instant) -> io::Result<()> {
        let port = self.recorder().ok_or(io::ErrorKind::NotConnected)?;
        self.send_to_until(datagram, port, deadline)
    }

    fn poll_control(&mut self) -> io::Result<Option<NlHeader>> {
        while let Some(unregister) = self.read_one()? {
            if unregister.is_some() {
                return Ok(unregister);
            }
        }
        Ok(None)
    }

    fn wait_control(&mut self, timeout: Duration) -> io::Result<Option<NlHeader>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(h) = self.poll_control()? {
                return Ok(Some(h));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.readable(deadline - now)?;
        }
    }
}

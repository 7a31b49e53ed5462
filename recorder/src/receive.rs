//! Receiving datagrams (one batch each) from the netlink socket.
//!
//! Three backends, tried in this order:
//! 1. io_uring multishot recv with a provided buffer ring (kernel 6.0+):
//!    one armed request delivers every batch into a buffer of the ring.
//! 2. io_uring single-shot recv, several in flight, each with its own buffer.
//! 3. Plain non-blocking `recv` after `poll`, for kernels or sandboxes where
//!    io_uring is unavailable (disabled by sysctl or seccomp).
//!
//! Every receive passes `MSG_TRUNC`, so the returned length is the
//! datagram's real length and a batch larger than its buffer is reported as
//! truncated rather than silently cut. Each backend hands datagrams to the
//! caller in arrival order.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::{IoUring, cqueue, opcode, types};

use crate::sys::{poll_readable, recv_datagram};

/// Which receive path to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoMode {
    /// io_uring (multishot, else single-shot), falling back to recv.
    Uring,
    /// Plain recv.
    Recv,
}

/// Environment variable that makes io_uring look unavailable, for tests of
/// the fallback path (as when `kernel.io_uring_disabled` is set).
pub const DISABLE_URING_ENV: &str = "IMP2_DISABLE_IO_URING";

/// Bounds on the number of ring buffers (powers of two). Two at least: a
/// single buffer has to come back before the next batch can be received,
/// and the request is re-armed after every batch that found it taken.
const RING_BUFFERS_MIN: usize = 2;
const RING_BUFFERS_MAX: usize = 64;

/// Buffers in the multishot ring for datagrams of `buf_len` bytes: a power
/// of two filling about `ring_bytes` ([`crate::cache::ring_bytes`]: as much
/// as the core's cache holds, so that the kernel copies each batch into
/// cache-resident memory; with 64 buffers of a 64 KiB batch, 4 MiB, every
/// batch landed in cold memory and cost measurably more to receive and to
/// walk). Running out of buffers loses nothing: the batch waits in the
/// socket and the receive is re-armed once buffers come back.
fn ring_buffers(buf_len: usize, ring_bytes: usize) -> u16 {
    let fit = ring_bytes / buf_len.max(1);
    let n = if fit.is_power_of_two() {
        fit
    } else {
        fit.next_power_of_two() / 2
    };
    n.clamp(RING_BUFFERS_MIN, RING_BUFFERS_MAX) as u16
}
/// Single-shot receives kept in flight.
const SINGLE_IN_FLIGHT: usize = 4;
/// Buffer group id of the provided buffer ring.
const BUFFER_GROUP: u16 = 7;
/// user_data of the multishot request, and of its cancellation.
const MULTISHOT_TAG: u64 = u64::MAX - 1;
const CANCEL_TAG: u64 = u64::MAX;

/// A datagram sink: `(bytes, truncated)`.
pub type OnDatagram<'a> = dyn FnMut(&[u8], bool) + 'a;

/// The receiver, whichever backend it is.
#[derive(Debug)]
pub struct Receiver {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Multishot(Multishot),
    Single(Single),
    Plain(Plain),
}

impl Receiver {
    /// Sets up the best available backend for `fd`, with buffers of
    /// `buf_len` bytes (each must hold a whole batch). `notice` receives a
    /// line when a fallback is taken.
    pub fn new(
        fd: RawFd,
        mode: IoMode,
        buf_len: usize,
        notice: &mut dyn FnMut(String),
    ) -> Receiver {
        let backend = match mode {
            IoMode::Recv => Backend::Plain(Plain::new(fd, buf_len)),
            IoMode::Uring => match uring(fd, buf_len) {
                Ok(b) => b,
                Err(e) => {
                    notice(format!(
                        "io_uring is unavailable ({e}); receiving with recv()"
                    ));
                    Backend::Plain(Plain::new(fd, buf_len))
                }
            },
        };
        Receiver { backend }
    }

    /// Name of the backend in use, for reports.
    pub fn name(&self) -> &'static str {
        match self.backend {
            Backend::Multishot(_) => "io_uring-multishot",
            Backend::Single(_) => "io_uring",
            Backend::Plain(_) => "recv",
        }
    }

    /// The receive buffers: how many, and bytes each.
    pub fn buffers(&self) -> (usize, usize) {
        match &self.backend {
            Backend::Multishot(m) => (m.slots.count(), m.slots.slot_len),
            Backend::Single(s) => (s.slots.count(), s.slots.slot_len),
            Backend::Plain(p) => (1, p.buf.len()),
        }
    }

    /// Waits up to `timeout` for datagrams and hands each one that arrived
    /// to `on`. Returns how many were delivered. A signal ends the wait
    /// early with `Ok`.
    pub fn poll(&mut self, timeout: Duration, on: &mut OnDatagram<'_>) -> io::Result<usize> {
        match &mut self.backend {
            Backend::Multishot(m) => match m.poll(timeout, on) {
                Err(e) if m.delivered == 0 && e.raw_os_error() == Some(libc::EINVAL) => {
                    // Multishot recv is not supported by this kernel (it
                    // answers the first request with EINVAL): fall back.
                    let fd = m.fd;
                    let buf_len = m.buf_len;
                    self.backend = Backend::Single(Single::new(fd, buf_len)?);
                    Ok(0)
                }
                other => other,
            },
            Backend::Single(s) => s.poll(timeout, on),
            Backend::Plain(p) => p.poll(timeout, on),
        }
    }

    /// Stops receiving: cancels outstanding io_uring requests and delivers
    /// whatever they had already received, so that nothing is lost between
    /// the last poll and the end. Afterwards the socket can be read directly.
    pub fn shutdown(&mut self, on: &mut OnDatagram<'_>) -> io::Result<()> {
        match &mut self.backend {
            Backend::Multishot(m) => m.shutdown(on),
            Backend::Single(s) => s.shutdown(on),
            Backend::Plain(_) => Ok(()),
        }
    }
}

fn uring(fd: RawFd, buf_len: usize) -> io::Result<Backend> {
    if std::env::var_os(DISABLE_URING_ENV).is_some() {
        return Err(io::Error::other(format!("disabled by {DISABLE_URING_ENV}")));
    }
    match Multishot::new(fd, buf_len) {
        Ok(m) => Ok(Backend::Multishot(m)),
        // No provided buffer rings (before 5.19): single-shot receives.
        Err(_) => Single::new(fd, buf_len).map(Backend::Single),
    }
}

/// Submits and waits for at least one completion or `timeout`.
fn submit_and_wait(ring: &IoUring, timeout: Duration) -> io::Result<()> {
    let ts = types::Timespec::from(timeout);
    let args = types::SubmitArgs::new().timespec(&ts);
    match ring.submitter().submit_with_args(1, &args) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR)) => Ok(()),
        // EBUSY: the completion queue is full; the caller drains it next.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Receive buffers: one allocation cut into equal slots.
#[derive(Debug)]
struct Slots {
    memory: Vec<u8>,
    slot_len: usize,
}

impl Slots {
    fn new(count: usize, slot_len: usize) -> Slots {
        Slots {
            memory: vec![0u8; count * slot_len],
            slot_len,
        }
    }

    fn count(&self) -> usize {
        self.memory.len() / self.slot_len.max(1)
    }

    fn ptr(&mut self, slot: usize) -> *mut u8 {
        self.memory[slot * self.slot_len..].as_mut_ptr()
    }

    /// The received part of `slot`, for a receive that returned `res`.
    fn received(&self, slot: usize, res: usize) -> (&[u8], bool) {
        let start = slot * self.slot_len;
        let len = res.min(self.slot_len);
        (&self.memory[start..start + len], res > self.slot_len)
    }
}

// --- 1. multishot with a provided buffer ring ------------------------------

/// The ring of buffer descriptors shared with the kernel
/// (`struct io_uring_buf_ring`): 16-byte entries, the tail in the last two
/// bytes of entry 0.
#[derive(Debug)]
struct BufRing {
    entries: *mut u8,
    len: usize,
    mask: u16,
    tail: u16,
}

impl BufRing {
    fn new(count: u16) -> io::Result<BufRing> {
        let len = usize::from(count) * 16;
        // SAFETY: anonymous private mapping, no file descriptor; the result
        // is checked against MAP_FAILED. Page alignment is what the kernel
        // requires of a buffer ring.
        let entries = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if entries == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(BufRing {
            entries: entries.cast(),
            len,
            mask: count - 1,
            tail: 0,
        })
    }

    /// Queues buffer `bid` (at `addr`, `len` bytes) for the kernel; visible
    /// after [`BufRing::publish`].
    fn add(&mut self, bid: u16, addr: *mut u8, len: u32) {
        let index = usize::from(self.tail & self.mask);
        // SAFETY: index < count, so the 16-byte entry lies inside the
        // mapping; fields are written at their io_uring_buf offsets (addr
        // u64 at 0, len u32 at 8, bid u16 at 12) without touching the
        // entry's last two bytes, which in entry 0 hold the shared tail.
        unsafe {
            let entry = self.entries.add(index * 16);
            entry.cast::<u64>().write_volatile(addr as u64);
            entry.add(8).cast::<u32>().write_volatile(len);
            entry.add(12).cast::<u16>().write_volatile(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the added buffers visible to the kernel (release store of the
    /// tail, as io_uring_buf_ring_advance does).
    fn publish(&self) {
        // SAFETY: offset 14 is the u16 tail of struct io_uring_buf_ring, in
        // the mapping and 2-aligned; the kernel reads it concurrently, so it
        // is accessed atomically.
        let tail = unsafe { &*self.entries.add(14).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: entries/len are exactly the mapping made in new().
        unsafe { libc::munmap(self.entries.cast(), self.len) };
    }
}

struct Multishot {
    // Field order matters for drop: the ring (and its registration of the
    // buffer ring) goes before the memory it points to.
    ring: IoUring,
    bufs: BufRing,
    slots: Slots,
    fd: RawFd,
    buf_len: usize,
    armed: bool,
    delivered: u64,
}

impl Multishot {
    fn new(fd: RawFd, buf_len: usize) -> io::Result<Multishot> {
        let ring = IoUring::builder().build(256)?;
        let count = ring_buffers(buf_len, crate::cache::ring_bytes());
        let mut bufs = BufRing::new(count)?;
        let mut slots = Slots::new(usize::from(count), buf_len);
        // SAFETY: the buffer ring memory stays mapped and unmoved until after
        // the io_uring instance (declared first, dropped first) is gone.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                bufs.entries as u64,
                count,
                BUFFER_GROUP,
                0,
            )?;
        }
        for bid in 0..count {
            bufs.add(bid, slots.ptr(usize::from(bid)), buf_len as u32);
        }
        bufs.publish();
        Ok(Multishot {
            ring,
            bufs,
            slots,
            fd,
            buf_len,
            armed: false,
            delivered: 0,
        })
    }

    fn arm(&mut self) -> io::Result<()> {
        let sqe = opcode::RecvMulti::new(types::Fd(self.fd), BUFFER_GROUP)
            .flags(libc::MSG_TRUNC)
            .build()
            .user_data(MULTISHOT_TAG);
        // SAFETY: the request only refers to buffers of the registered ring,
        // which outlive the io_uring instance.
        unsafe { self.ring.submission().push(&sqe) }
            .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        self.armed = true;
        Ok(())
    }

    fn poll(&mut self, timeout: Duration, on: &mut OnDatagram<'_>) -> io::Result<usize> {
        if !self.armed {
            self.arm()?;
        }
        submit_and_wait(&self.ring, timeout)?;
        self.drain(on)
    }

    /// Handles every completion queued now.
    fn drain(&mut self, on: &mut OnDatagram<'_>) -> io::Result<usize> {
        let mut delivered = 0;
        let mut error = None;
        let mut cq = self.ring.completion();
        cq.sync();
        for cqe in &mut cq {
            if cqe.user_data() != MULTISHOT_TAG {
                continue; // the cancellation's own completion
            }
            if !cqueue::more(cqe.flags()) {
                self.armed = false;
            }
            let res = cqe.result();
            if res < 0 {
                // -ENOBUFS: every ring buffer is in use (we were slow);
                // netlink overruns cannot cause it since NETLINK_NO_ENOBUFS
                // is set. Buffers go back below; re-arm then. -ECANCELED:
                // shutdown. Anything else is a real error.
                if !matches!(-res, libc::ENOBUFS | libc::ECANCELED) {
                    error = Some(io::Error::from_raw_os_error(-res));
                }
                continue;
            }
            let Some(bid) = cqueue::buffer_select(cqe.flags()) else {
                error = Some(io::Error::other("multishot completion without a buffer"));
                continue;
            };
            let (datagram, truncated) = self.slots.received(usize::from(bid), res as usize);
            on(datagram, truncated);
            delivered += 1;
            self.delivered += 1;
            let ptr = self.slots.ptr(usize::from(bid));
            self.bufs.add(bid, ptr, self.buf_len as u32);
        }
        drop(cq);
        self.bufs.publish();
        match error {
            Some(e) => Err(e),
            None => Ok(delivered),
        }
    }

    fn shutdown(&mut self, on: &mut OnDatagram<'_>) -> io::Result<()> {
        if !self.armed {
            return Ok(());
        }
        let cancel = opcode::AsyncCancel::new(MULTISHOT_TAG)
            .build()
            .user_data(CANCEL_TAG);
        // SAFETY: the cancel request refers to no memory.
        unsafe { self.ring.submission().push(&cancel) }
            .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        // The multishot request ends with a completion without MORE; data it
        // received before that is delivered, not dropped.
        for _ in 0..100 {
            submit_and_wait(&self.ring, Duration::from_millis(20))?;
            self.drain(on)?;
            if !self.armed {
                return Ok(());
            }
        }
        Err(io::Error::other("io_uring multishot receive did not stop"))
    }
}

// --- 2. single-shot receives in flight ---------------------------------------

struct Single {
    ring: IoUring,
    slots: Slots,
    fd: RawFd,
    in_flight: [bool; SINGLE_IN_FLIGHT],
}

impl Single {
    fn new(fd: RawFd, buf_len: usize) -> io::Result<Single> {
        let ring = IoUring::builder().build(64)?;
        Ok(Single {
            ring,
            slots: Slots::new(SINGLE_IN_FLIGHT, buf_len),
            fd,
            in_flight: [false; SINGLE_IN_FLIGHT],
        })
    }

    fn submit_slot(&mut self, slot: usize) -> io::Result<()> {
        let len = self.slots.slot_len as u32;
        let sqe = opcode::Recv::new(types::Fd(self.fd), self.slots.ptr(slot), len)
            .flags(libc::MSG_TRUNC)
            .build()
            .user_data(slot as u64);
        // SAFETY: the slot's memory lives in self.slots, which is dropped
        // after the ring (field order), and is not touched until the
        // request completes.
        unsafe { self.ring.submission().push(&sqe) }
            .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        self.in_flight[slot] = true;
        Ok(())
    }

    fn poll(&mut self, timeout: Duration, on: &mut OnDatagram<'_>) -> io::Result<usize> {
        for slot in 0..SINGLE_IN_FLIGHT {
            if !self.in_flight[slot] {
                self.submit_slot(slot)?;
            }
        }
        submit_and_wait(&self.ring, timeout)?;
        self.drain(on)
    }

    fn drain(&mut self, on: &mut OnDatagram<'_>) -> io::Result<usize> {
        let mut completed = [(0u64, 0i32); SINGLE_IN_FLIGHT];
        let mut n = 0;
        for cqe in self.ring.completion() {
            if cqe.user_data() < SINGLE_IN_FLIGHT as u64 && n < SINGLE_IN_FLIGHT {
                completed[n] = (cqe.user_data(), cqe.result());
                n += 1;
            }
        }
        let mut delivered = 0;
        for &(slot, res) in &completed[..n] {
            let slot = slot as usize;
            self.in_flight[slot] = false;
            if res == -libc::ECANCELED {
                continue;
            }
            if res < 0 {
                return Err(io::Error::from_raw_os_error(-res));
            }
            let (datagram, truncated) = self.slots.received(slot, res as usize);
            on(datagram, truncated);
            delivered += 1;
        }
        Ok(delivered)
    }

    fn shutdown(&mut self, on: &mut OnDatagram<'_>) -> io::Result<()> {
        for slot in 0..SINGLE_IN_FLIGHT {
            if self.in_flight[slot] {
                let cancel = opcode::AsyncCancel::new(slot as u64)
                    .build()
                    .user_data(CANCEL_TAG);
                // SAFETY: the cancel request refers to no memory.
                unsafe { self.ring.submission().push(&cancel) }
                    .map_err(|_| io::Error::other("io_uring submission queue full"))?;
            }
        }
        for _ in 0..100 {
            if !self.in_flight.iter().any(|&f| f) {
                return Ok(());
            }
            submit_and_wait(&self.ring, Duration::from_millis(20))?;
            self.drain(on)?;
        }
        Err(io::Error::other("io_uring receives did not stop"))
    }
}

// --- 3. plain recv -------------------------------------------------------------

#[derive(Debug)]
struct Plain {
    fd: RawFd,
    buf: Vec<u8>,
}

impl Plain {
    fn new(fd: RawFd, buf_len: usize) -> Plain {
        Plain {
            fd,
            buf: vec![0u8; buf_len],
        }
    }

    fn poll(&mut self, timeout: Duration, on: &mut OnDatagram<'_>) -> io::Result<usize> {
        if !poll_readable(self.fd, timeout)? {
            return Ok(0);
        }
        let mut delivered = 0;
        // Drain what is queued, bounded so progress and signals are seen.
        while delivered < 256 {
            let (n, truncated) = match recv_datagram(&self.fd, &mut self.buf) {
                Ok(r) => r,
                Err(e) => {
                    return match e.kind() {
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(delivered),
                        _ => Err(e),
                    };
                }
            };
            on(&self.buf[..n.min(self.buf.len())], truncated);
            delivered += 1;
        }
        Ok(delivered)
    }
}

impl std::fmt::Debug for Multishot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multishot")
            .field("fd", &self.fd)
            .field("armed", &self.armed)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Single {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Single")
            .field("fd", &self.fd)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_holds_whole_batches_within_its_budget() {
        const MIB: usize = 1 << 20;
        // A 2 MiB L2 (half of it for the ring): the module's 64 KiB
        // batches, NFLOG's 256 KiB datagrams.
        assert_eq!(ring_buffers(64 << 10, MIB), 16);
        assert_eq!(ring_buffers(65024usize.next_multiple_of(4096), MIB), 16);
        assert_eq!(ring_buffers(96 << 10, MIB), 8);
        assert_eq!(ring_buffers(256 << 10, MIB), 4);
        // A 512 KiB L2 (Zen 3): 256 KiB for the ring.
        assert_eq!(ring_buffers(64 << 10, MIB / 4), 4);
        assert_eq!(ring_buffers(256 << 10, MIB / 4), 2);
        // Bounds.
        assert_eq!(ring_buffers(4 << 20, MIB), 2);
        assert_eq!(ring_buffers(4096, MIB), 64);
        assert_eq!(ring_buffers(0, MIB), 64);
    }
}

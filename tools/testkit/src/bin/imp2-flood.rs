//! imp2-flood: a bounded traffic generator for tests and benchmarks.
//!
//! Sends a counted UDP flood (sendmmsg batches), ICMP echo requests (raw
//! socket, else a ping socket) and one TCP stream of a given size, then
//! prints one JSON object with what the kernel accepted. Every run is
//! bounded in count and in time (`--timeout`).
//!
//! Meant to run inside a test's own network namespace (`ip netns exec`):
//! destinations are limited to loopback and the test prefixes 10.199.0.0/16
//! and fd00:199::/32 unless `--any-destination` is given.
//!
//! Counting is exact: a UDP datagram counts as sent only when sendmmsg
//! reports it accepted, and `IP_RECVERR` makes the kernel report the
//! datagrams a full device queue dropped (ENOBUFS, which UDP otherwise
//! swallows); those are sent again. Each UDP payload starts with its index
//! (u64, big endian), so a capture can be checked packet by packet.

// The doc comments of `Args` are also its `--help` text, written for a
// terminal: `[ADDR]:PORT` there is not a rustdoc link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use imp2_testkit::sys::setsockopt_int as set_int;
use serde::Serialize;

/// Bounded traffic for imp2 tests: UDP flood, ICMP echo, one TCP stream.
///
/// Examples (inside a test namespace):
///   imp2-flood --udp 10.199.0.2:9999 -n 100000 --size 64
///   imp2-flood --udp [fd00:199::2]:9999 -n 1000 --rate 50000
///   imp2-flood --icmp 10.199.0.2 --icmp-count 10 --tcp 10.199.0.2:9998 --tcp-bytes 1000000
///   imp2-flood --tcp-sink 10.199.0.2:9998      # the receiving end of --tcp
#[derive(Debug, Parser)]
#[command(name = "imp2-flood", version, verbatim_doc_comment)]
struct Args {
    /// Send UDP datagrams to ADDR:PORT (IPv6 as [ADDR]:PORT).
    #[arg(long, value_name = "ADDR:PORT")]
    udp: Option<SocketAddr>,

    /// UDP datagrams to send (and ICMP echo requests, unless --icmp-count).
    #[arg(short = 'n', long, value_name = "N", default_value_t = 0)]
    count: u64,

    /// UDP payload bytes per datagram (8-65000; the first 8 hold the index).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    size: usize,

    /// UDP datagrams per second, paced per batch; 0: as fast as possible.
    #[arg(long, value_name = "PPS", default_value_t = 0)]
    rate: u64,

    /// Datagrams per sendmmsg call (1-1024).
    #[arg(long, value_name = "N", default_value_t = 64)]
    batch: usize,

    /// Send ICMP (IPv4) or ICMPv6 echo requests to ADDR.
    #[arg(long, value_name = "ADDR")]
    icmp: Option<IpAddr>,

    /// Echo requests to send (default: -n).
    #[arg(long, value_name = "N")]
    icmp_count: Option<u64>,

    /// Open a TCP connection to ADDR:PORT and send --tcp-bytes bytes.
    #[arg(long, value_name = "ADDR:PORT")]
    tcp: Option<SocketAddr>,

    /// Bytes to send over the TCP connection.
    #[arg(long, value_name = "B", default_value_t = 0)]
    tcp_bytes: u64,

    /// Instead of sending: accept one TCP connection on ADDR:PORT, read it
    /// to the end and report the bytes received.
    #[arg(long, value_name = "ADDR:PORT", conflicts_with_all = ["udp", "icmp", "tcp"])]
    tcp_sink: Option<SocketAddr>,

    /// Give up after this many seconds (what was sent so far is reported).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    timeout: f64,

    /// Allow destinations outside loopback, 10.199.0.0/16 and fd00:199::/32.
    #[arg(long)]
    any_destination: bool,
}

/// What was sent (accepted by the kernel).
#[derive(Debug, Default, Serialize)]
struct Report {
    udp_sent: u64,
    udp_bytes: u64,
    /// sendmmsg calls that failed (or stopped early) and were retried.
    udp_retries: u64,
    udp_enobufs: u64,
    icmp_sent: u64,
    icmp_socket: &'static str,
    tcp_bytes_sent: u64,
    tcp_received: u64,
    elapsed_s: f64,
    udp_pps: f64,
    timed_out: bool,
}

/// An error with its context, for the one-line message on stderr.
#[derive(Debug)]
struct Fail(String);

fn ctx<T>(r: std::io::Result<T>, what: impl FnOnce() -> String) -> Result<T, Fail> {
    r.map_err(|e| Fail(format!("{}: {e}", what())))
}

fn allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback() || a.octets()[..2] == [10, 199],
        IpAddr::V6(a) => a.is_loopback() || a.segments()[..2] == [0xfd00, 0x0199],
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = check(&args) {
        eprintln!("imp2-flood: {}", e.0);
        return ExitCode::from(2);
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.timeout);
    let mut report = Report::default();
    match run(&args, deadline, &mut report) {
        Ok(()) => {
            report.elapsed_s = started.elapsed().as_secs_f64();
            report.udp_pps = report.udp_sent as f64 / report.elapsed_s.max(1e-9);
            report.timed_out = Instant::now() >= deadline;
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("imp2-flood: {}", e.0);
            ExitCode::from(1)
        }
    }
}

fn check(args: &Args) -> Result<(), Fail> {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(Fail(
            "--timeout must be a positive number of seconds".into(),
        ));
    }
    if !(8..=65_000).contains(&args.size) {
        return Err(Fail(format!("--size must be 8-65000, not {}", args.size)));
    }
    if !(1..=1024).contains(&args.batch) {
        return Err(Fail(format!("--batch must be 1-1024, not {}", args.batch)));
    }
    if args.udp.is_none() && args.icmp.is_none() && args.tcp.is_none() && args.tcp_sink.is_none() {
        return Err(Fail(
            "nothing to do: give --udp, --icmp, --tcp or --tcp-sink".into(),
        ));
    }
    let targets = [
        args.udp.map(|a| a.ip()),
        args.icmp,
        args.tcp.map(|a| a.ip()),
    ];
    for ip in targets.into_iter().flatten() {
        if !args.any_destination && !allowed(ip) {
            return Err(Fail(format!(
                "{ip} is outside loopback, 10.199.0.0/16 and fd00:199::/32 (the test \
                 namespaces); pass --any-destination to send there anyway"
            )));
        }
    }
    Ok(())
}

fn run(args: &Args, deadline: Instant, report: &mut Report) -> Result<(), Fail> {
    if let Some(addr) = args.tcp_sink {
        report.tcp_received = tcp_sink(addr, deadline)?;
        return Ok(());
    }
    if let Some(dst) = args.icmp {
        let n = args.icmp_count.unwrap_or(args.count);
        let (sent, kind) = icmp(dst, n, deadline)?;
        report.icmp_sent = sent;
        report.icmp_socket = kind;
    }
    if let Some(dst) = args.tcp {
        report.tcp_bytes_sent = tcp(dst, args.tcp_bytes, deadline)?;
    }
    if let Some(dst) = args.udp {
        udp(args, dst, deadline, report)?;
    }
    Ok(())
}

// --- UDP -----------------------------------------------------------------------

/// A socket address in C form.
struct CAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl CAddr {
    fn new(addr: SocketAddr) -> CAddr {
        // SAFETY: sockaddr_storage is plain data for which all-zero is valid.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*a.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // sockaddr_in.
                unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo().to_be(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // sockaddr_in6.
                unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        CAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }
}

fn socket(domain: libc::c_int, kind: libc::c_int, proto: libc::c_int) -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked before it is owned.
    let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Clears a pending socket error (an ICMP error queued by IP_RECVERR).
fn clear_error(fd: RawFd) {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err/len are valid for getsockopt to write; fd is open.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &mut len,
        )
    };
}

fn udp(args: &Args, dst: SocketAddr, deadline: Instant, report: &mut Report) -> Result<(), Fail> {
    let (domain, level, recverr) = match dst {
        SocketAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_IP, libc::IP_RECVERR),
        SocketAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_IPV6, libc::IPV6_RECVERR),
    };
    let sock = ctx(socket(domain, libc::SOCK_DGRAM, 0), || {
        "cannot open a UDP socket".into()
    })?;
    let fd = sock.as_raw_fd();
    // Report datagrams a full queue dropped instead of counting them sent.
    ctx(set_int(fd, level, recverr, 1), || {
        "cannot set IP_RECVERR".into()
    })?;
    let _ = set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 4 << 20);
    let mut addr = CAddr::new(dst);
    let batch = args.batch;
    let size = args.size;
    // One payload buffer per message of a batch; each starts with its index
    // (written before every call). The kernel reads them through the
    // iovecs, so after set-up they are only touched through `payload`.
    let mut payloads = vec![0u8; batch * size];
    for (i, b) in payloads.iter_mut().enumerate() {
        *b = (i % size + i / size) as u8;
    }
    let payload = payloads.as_mut_ptr();
    let mut iovs: Vec<libc::iovec> = (0..batch)
        // wrapping_add: in bounds (k * size < batch * size), no unsafe needed.
        .map(|k| libc::iovec {
            iov_base: payload.wrapping_add(k * size).cast(),
            iov_len: size,
        })
        .collect();
    let iov = iovs.as_mut_ptr();
    // SAFETY: mmsghdr is plain data for which all-zero is valid.
    let mut msgs: Vec<libc::mmsghdr> = (0..batch).map(|_| unsafe { std::mem::zeroed() }).collect();
    for (k, m) in msgs.iter_mut().enumerate() {
        m.msg_hdr.msg_name = (&raw mut addr.storage).cast();
        m.msg_hdr.msg_namelen = addr.len;
        m.msg_hdr.msg_iov = iov.wrapping_add(k);
        m.msg_hdr.msg_iovlen = 1;
    }
    let started = Instant::now();
    let total = args.count;
    let mut next = 0u64; // index of the next datagram to send
    let mut checks = 0u32;
    while next < total {
        checks = checks.wrapping_add(1);
        if checks % 64 == 0 && Instant::now() >= deadline {
            break;
        }
        if args.rate > 0 {
            // Pace: datagram `next` is due at next / rate seconds.
            let due = started + Duration::from_secs_f64(next as f64 / args.rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep((due - now).min(deadline.saturating_duration_since(now)));
                if Instant::now() >= deadline {
                    break;
                }
            }
        }
        let n = (total - next).min(batch as u64) as usize;
        for k in 0..n {
            let index = (next + k as u64).to_be_bytes();
            // SAFETY: k < batch, so the 8 bytes at k * size (size >= 8) lie
            // inside `payloads`, which is alive and not borrowed elsewhere.
            unsafe {
                payload
                    .add(k * size)
                    .cast::<[u8; 8]>()
                    .write_unaligned(index)
            };
        }
        // SAFETY: msgs[..n] point at addr, iovs and payloads, all alive and
        // unmoved for the call.
        let rc = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), n as libc::c_uint, 0) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            report.udp_retries += 1;
            match e.raw_os_error() {
                Some(libc::ENOBUFS) => {
                    // The device queue was full and dropped the datagram:
                    // let it drain, then send the same index again.
                    report.udp_enobufs += 1;
                    std::thread::yield_now();
                }
                Some(libc::EINTR | libc::EAGAIN) => {}
                // An ICMP error (e.g. port unreachable) queued by
                // IP_RECVERR fails the next send before anything is sent.
                Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH) => {
                    clear_error(fd)
                }
                _ => return Err(Fail(format!("sendmmsg to {dst}: {e}"))),
            }
            continue;
        }
        let sent = rc as u64;
        if (sent as usize) < n {
            report.udp_retries += 1;
        }
        next += sent;
        report.udp_bytes += sent * size as u64;
    }
    report.udp_sent = next;
    Ok(())
}

// --- ICMP ----------------------------------------------------------------------

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends `n` echo requests; returns how many the kernel accepted and the
/// socket kind used.
fn icmp(dst: IpAddr, n: u64, deadline: Instant) -> Result<(u64, &'static str), Fail> {
    let (domain, proto, echo) = match dst {
        IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP, 8u8),
        IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6, 128u8),
    };
    // Raw needs CAP_NET_RAW; a ping socket needs net.ipv4.ping_group_range.
    let (sock, kind) = match socket(domain, libc::SOCK_RAW, proto) {
        Ok(s) => (s, "raw"),
        Err(raw) => match socket(domain, libc::SOCK_DGRAM, proto) {
            Ok(s) => (s, "ping"),
            Err(ping) => {
                return Err(Fail(format!(
                    "cannot open an ICMP socket: raw: {raw}; ping: {ping} (needs CAP_NET_RAW \
                     or net.ipv4.ping_group_range)"
                )));
            }
        },
    };
    let addr = CAddr::new(SocketAddr::new(dst, 0));
    let mut sent = 0u64;
    let mut packet = [0u8; 64];
    let mut attempts = 0u64;
    while sent < n && Instant::now() < deadline && attempts < n.saturating_mul(100) {
        attempts += 1;
        packet.fill(0);
        packet[0] = echo;
        packet[4..6].copy_from_slice(&0x1d9u16.to_be_bytes()); // identifier
        packet[6..8].copy_from_slice(&(sent as u16).to_be_bytes()); // sequence
        packet[8..16].copy_from_slice(&sent.to_be_bytes());
        if domain == libc::AF_INET && kind == "raw" {
            // ICMPv6 and ping sockets get their checksum from the kernel.
            let c = checksum(&packet);
            packet[2..4].copy_from_slice(&c.to_be_bytes());
        }
        // SAFETY: packet and addr are valid for the call's duration.
        let rc = unsafe {
            libc::sendto(
                sock.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&raw const addr.storage).cast(),
                addr.len,
            )
        };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if !matches!(
                e.raw_os_error(),
                Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR)
            ) {
                return Err(Fail(format!("sending ICMP echo to {dst}: {e}")));
            }
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        sent += 1;
    }
    Ok((sent, kind))
}

// --- TCP -----------------------------------------------------------------------

fn tcp(dst: SocketAddr, bytes: u64, deadline: Instant) -> Result<u64, Fail> {
    // The sink may still be starting: retry the connection until the deadline.
    let mut stream = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Fail(format!("cannot connect to {dst} before the timeout")));
        }
        match TcpStream::connect_timeout(&dst, left.min(Duration::from_secs(2))) {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(Fail(format!("connecting to {dst}: {e}"))),
        }
    };
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    ctx(stream.set_write_timeout(Some(left)), || {
        "setting the TCP write timeout".into()
    })?;
    let chunk = [0x5au8; 64 << 10];
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(chunk.len() as u64) as usize;
        match stream.write(&chunk[..n]) {
            Ok(0) => break,
            Ok(k) => sent += k as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => return Err(Fail(format!("sending to {dst}: {e}"))),
        }
    }
    // Orderly close: FIN, then wait (bounded) for the peer's FIN so every
    // segment has been through the network before the counts are read.
    ctx(stream.shutdown(std::net::Shutdown::Write), || {
        "closing the TCP stream".into()
    })?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let _ = stream.set_read_timeout(Some(left));
    let mut buf = [0u8; 4096];
    while let Ok(k) = stream.read(&mut buf) {
        if k == 0 {
            break;
        }
    }
    Ok(sent)
}

fn tcp_sink(addr: SocketAddr, deadline: Instant) -> Result<u64, Fail> {
    let listener = ctx(TcpListener::bind(addr), || {
        format!("cannot listen on {addr}")
    })?;
    ctx(listener.set_nonblocking(true), || "listener".into())?;
    eprintln!("imp2-flood: listening on {addr}");
    let (mut stream, _) = loop {
        match listener.accept() {
            Ok(c) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Ok(0);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(Fail(format!("accepting on {addr}: {e}"))),
        }
    };
    ctx(stream.set_nonblocking(false), || "stream".into())?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    ctx(stream.set_read_timeout(Some(left)), || {
        "setting the read timeout".into()
    })?;
    let mut buf = vec![0u8; 256 << 10];
    let mut received = 0u64;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => received += k as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break, // timeout or reset: report what arrived
        }
    }
    Ok(received)
}

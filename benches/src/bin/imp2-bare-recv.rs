//! imp2-bare-recv: the limit for the recorder. Registers with a producer
//! (imp2-loadgen, or the module with `--peer 0`) exactly like imp2-record,
//! then only receives batches with plain blocking `recv` and walks them
//! (every record is parsed and its length summed; nothing is written).
//!
//! ```text
//! imp2-bare-recv --peer PORT -c N [--unit 2] [--rcvbuf BYTES] [--duration SECS] [--json]
//! ```
//!
//! Ends after N records, after `--duration`, or when the producer is gone;
//! sends UNREGISTER and prints `records`, `cpu_user_s`, `cpu_sys_s`,
//! `elapsed_s` (JSON with `--json`), like imp2-record's summary.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use imp2_format::wire::{
    BatchMessage, BatchWalker, Config, abi, register_message, unregister_message,
};
use imp2_testkit::sys;

struct Args {
    unit: i32,
    peer: u32,
    count: u64,
    rcvbuf: usize,
    duration: f64,
    json: bool,
}

fn parse_size(s: &str) -> Option<usize> {
    let (digits, mult) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1usize << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits.parse::<usize>().ok()?.checked_mul(mult)
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        unit: 2,
        peer: 0,
        count: u64::MAX,
        rcvbuf: 64 << 20,
        duration: 60.0,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--json" {
            a.json = true;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {v}");
        match flag.as_str() {
            "--unit" => a.unit = v.parse().map_err(|_| bad())?,
            "--peer" => a.peer = v.parse().map_err(|_| bad())?,
            "-c" | "--count" => a.count = v.parse().map_err(|_| bad())?,
            "--rcvbuf" => a.rcvbuf = parse_size(&v).ok_or_else(bad)?,
            "--duration" => a.duration = v.parse().map_err(|_| bad())?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if !(a.duration.is_finite() && a.duration > 0.0) {
        return Err("--duration must be positive".into());
    }
    Ok(a)
}

/// A bound NETLINK socket on `unit` (port chosen by the kernel).
struct Sock {
    fd: i32,
    port: u32,
}

impl Drop for Sock {
    fn drop(&mut self) {
        // SAFETY: fd is a socket this struct owns.
        unsafe {
            libc::close(self.fd);
        }
    }
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

impl Sock {
    fn open(unit: i32, rcvbuf: usize) -> Result<Sock, String> {
        // SAFETY: plain socket(2) call.
        let fd =
            unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, unit) };
        if fd < 0 {
            return Err(os_err("socket"));
        }
        let mut sock = Sock { fd, port: 0 };
        // SAFETY: sockaddr_nl is plain data; zeroed is valid (port 0: autobind).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        let len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: addr is a valid sockaddr_nl of `len` bytes.
        if unsafe { libc::bind(fd, (&raw const addr).cast(), len) } != 0 {
            return Err(os_err("bind"));
        }
        let mut got_len = len;
        // SAFETY: addr has room for `got_len` bytes.
        if unsafe { libc::getsockname(fd, (&raw mut addr).cast(), &mut got_len) } != 0 {
            return Err(os_err("getsockname"));
        }
        let half = libc::c_int::try_from(rcvbuf / 2).unwrap_or(libc::c_int::MAX);
        let one: libc::c_int = 1;
        if sys::set_rcvbuf(fd, half as usize).is_err() {
            return Err(os_err("SO_RCVBUF"));
        }
        if sys::setsockopt_int(fd, libc::SOL_NETLINK, libc::NETLINK_NO_ENOBUFS, one).is_err() {
            return Err(os_err("NETLINK_NO_ENOBUFS"));
        }
        // 250 ms receive timeout: the time bound is checked between recvs.
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 250_000,
        };
        // SAFETY: tv is a timeval whose size is passed.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(os_err("SO_RCVTIMEO"));
        }
        sock.port = addr.nl_pid;
        Ok(sock)
    }

    fn send_to(&self, peer: u32, msg: &[u8]) -> Result<(), String> {
        // SAFETY: sockaddr_nl is plain data.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        addr.nl_pid = peer;
        // SAFETY: msg and addr are valid for the lengths passed.
        let n = unsafe {
            libc::sendto(
                self.fd,
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(os_err("sendto"));
        }
        Ok(())
    }

    /// Blocking recv (up to the 250 ms timeout): `Ok(None)` on timeout.
    fn recv(&self, buf: &mut [u8]) -> Result<Option<usize>, String> {
        // SAFETY: buf is valid for writes of buf.len() bytes.
        let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => Ok(None),
                _ => Err(format!("recv: {e}")),
            };
        }
        Ok(Some(n as usize))
    }
}

#[derive(Default)]
struct Walked {
    records: u64,
    bytes: u64,
    dropped: u64,
}

/// The whole per-batch work: walk every message, parse every record.
#[inline(never)]
fn walk(buf: &[u8], w: &mut Walked) {
    for item in BatchWalker::new(buf).flatten() {
        match item.message {
            BatchMessage::Record(r) => {
                w.records += 1;
                w.bytes += r.data.len() as u64;
            }
            BatchMessage::Done(t) => w.dropped += t.dropped_sum(),
            _ => {}
        }
    }
}

fn run(a: &Args) -> Result<(), String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(a.duration);
    let sock = Sock::open(a.unit, a.rcvbuf)?;
    let mut buf = vec![0u8; (abi::BATCH_BYTES_DEFAULT as usize).next_multiple_of(4096)];
    let mut w = Walked::default();
    sock.send_to(a.peer, &register_message(&Config::default(), 1, sock.port))?;
    let mut stopped_by = "duration";
    while Instant::now() < deadline {
        match sock.recv(&mut buf)? {
            Some(n) => walk(&buf[..n.min(buf.len())], &mut w),
            None => continue,
        }
        if w.records >= a.count {
            stopped_by = "count";
            break;
        }
    }
    // Stop the producer; it may be gone already (then this fails: fine).
    let _ = sock.send_to(a.peer, &unregister_message(2, sock.port));
    let elapsed = started.elapsed().as_secs_f64();
    let (user, sys) = sys::cpu_seconds();
    if a.json {
        println!(
            "{{\"records\":{},\"captured_bytes\":{},\"dropped\":{},\"elapsed_s\":{elapsed:.6},\
             \"cpu_user_s\":{user:.6},\"cpu_sys_s\":{sys:.6},\"port_id\":{},\"stopped_by\":\"{stopped_by}\"}}",
            w.records, w.bytes, w.dropped, sock.port
        );
    } else {
        println!(
            "imp2-bare-recv: {} records ({} bytes) in {elapsed:.3} s, cpu {user:.3} user + {sys:.3} sys, \
             {:.1} ns/record, stopped by {stopped_by}",
            w.records,
            w.bytes,
            (user + sys) * 1e9 / w.records.max(1) as f64
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match parse_args().and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imp2-bare-recv: {e}");
            ExitCode::from(2)
        }
    }
}

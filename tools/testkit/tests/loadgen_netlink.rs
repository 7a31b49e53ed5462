//! End-to-end tests of imp2-loadgen over real NETLINK_USERSOCK sockets on
//! the running kernel: a small receiver written here registers like the
//! recorder, walks every datagram with `BatchWalker`, and checks what the
//! loadgen claims in its JSON report against what actually arrived —
//! record counts, per-CPU sequence numbers and running totals, drop
//! accounting from the trailers, the digest, ACK errnos, per-record
//! framing and the hostile datagrams.
//!
//! Every wait is bounded; a loadgen that outlives its test is killed.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use imp2_format::ip::ip_family;
use imp2_format::wire::{
    BatchMessage, BatchTrailer, BatchWalker, Config, FramingError, MalformedBatchReason, NlHeader,
    Register, RegisterFilter, abi, register_filtered_message, register_message, unregister_message,
};
use imp2_format::{Family, Hook};
use imp2_testkit::RecordDigest;
use netlink_sys::{Socket, SocketAddr};
use serde_json::Value;

/// NETLINK_USERSOCK: two user processes talk without any module.
const UNIT: isize = 2;

/// Bound of every test's conversation.
const TIMEOUT: Duration = Duration::from_secs(90);

// --- the loadgen process ---------------------------------------------------

/// A running loadgen; killed (by its pid) if the test ends early.
struct Loadgen {
    child: Option<Child>,
    port: u32,
    _dir: tempfile::TempDir,
}

impl Loadgen {
    /// Starts `imp2-loadgen --json --ready-file ... ARGS` and waits until
    /// it has bound its socket.
    fn spawn(args: &[&str]) -> Loadgen {
        let dir = tempfile::tempdir().expect("tempdir");
        let ready: PathBuf = dir.path().join("ready");
        let mut child = Command::new(env!("CARGO_BIN_EXE_imp2-loadgen"))
            .arg("--json")
            .arg("--ready-file")
            .arg(&ready)
            .args(if args.contains(&"--register-timeout") {
                &[][..]
            } else {
                &["--register-timeout", "30"][..]
            })
            .args(["--linger", "30"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn imp2-loadgen");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                break text.trim().parse().expect("port id in ready file");
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                child.stderr.take().unwrap().read_to_string(&mut err).ok();
                panic!("imp2-loadgen exited early ({status}): {err}");
            }
            assert!(Instant::now() < deadline, "imp2-loadgen never got ready");
            std::thread::sleep(Duration::from_millis(2));
        };
        Loadgen {
            child: Some(child),
            port,
            _dir: dir,
        }
    }

    /// Waits for the exit (bounded) and returns the status and the JSON.
    fn finish(mut self) -> (ExitStatus, Value) {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("imp2-loadgen did not exit in time");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let json: Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("bad JSON ({e}): {out:?}; stderr: {err}"));
        (status, json)
    }
}

impl Drop for Loadgen {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn num(json: &Value, key: &str) -> u64 {
    json[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {json}"))
}

/// The report's own invariant.
fn check_report(json: &Value) {
    assert_eq!(
        num(json, "generated"),
        num(json, "sent") - num(json, "hostile_records") + num(json, "dropped"),
        "generated == sent - hostile_records + dropped: {json}"
    );
    let by_cause: u64 = json["dropped_by_cause"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_cause, num(json, "dropped"));
}

// --- the receiver ----------------------------------------------------------

/// What one CPU's trailers said so far.
#[derive(Debug, Default, Clone)]
struct CpuTally {
    last_seq: u64,
    records_total: u64,
    dropped: [u64; abi::DROP_CAUSES],
    dropped_total: [u64; abi::DROP_CAUSES],
    batches: u64,
    final_seen: bool,
}

/// Everything received, checked as it arrives.
#[derive(Debug, Default)]
struct Tally {
    records: u64,
    digest: RecordDigest,
    cpus: BTreeMap<u32, CpuTally>,
    /// Datagrams with a valid trailer.
    batches: u64,
    /// Records per batch datagram, by count.
    batch_sizes: BTreeMap<u32, u64>,
    hostile_datagrams: u64,
    hostile_records: u64,
    /// Malformed/unexpected items by kind name.
    hostile_kinds: BTreeMap<&'static str, u64>,
    /// (family, protocol, hook) seen.
    kinds: BTreeMap<(u8, u8, u8), u64>,
}

impl Tally {
    fn dropped(&self) -> u64 {
        self.cpus
            .values()
            .map(|c| c.dropped.iter().sum::<u64>())
            .sum()
    }

    fn all_final(&self, cpus: u32) -> bool {
        (0..cpus).all(|c| self.cpus.get(&c).is_some_and(|t| t.final_seen))
    }

    /// Walks one datagram.
    fn absorb(&mut self, datagram: &[u8]) {
        let mut records = 0u32;
        let mut digest = RecordDigest::default();
        let mut trailer: Option<BatchTrailer> = None;
        let mut items: Vec<&'static str> = Vec::new();
        for item in BatchWalker::new(datagram) {
            match item {
                Ok(item) => match item.message {
                    BatchMessage::Record(r) => {
                        assert!(r.data.len() as u64 <= u64::from(r.orig_len));
                        assert_eq!(item.header.flags, abi::NLM_F_MULTI);
                        match r.family {
                            Family::IPV4 | Family::IPV6 => {
                                assert_eq!(ip_family(r.data), Some(r.family))
                            }
                            f => panic!("family {f}"),
                        }
                        assert!(r.hook == Hook::PRE_ROUTING || r.hook == Hook::LOCAL_OUT);
                        *self
                            .kinds
                            .entry((r.family.0, r.protocol, r.hook.0))
                            .or_default() += 1;
                        records += 1;
                        digest.add(&r);
                    }
                    BatchMessage::Done(t) => {
                        assert!(trailer.is_none(), "two trailers in one datagram");
                        trailer = Some(t);
                    }
                    BatchMessage::Error { errno, .. } => {
                        assert_eq!(errno, -libc::EIO);
                        items.push("error");
                    }
                    BatchMessage::Unknown { msg_type, .. } => {
                        assert_eq!(msg_type, 0x7ff0);
                        items.push("unknown_type");
                    }
                    BatchMessage::Overrun | BatchMessage::Noop => items.push("other"),
                },
                Err(m) => items.push(match m.reason {
                    MalformedBatchReason::Framing(FramingError::TrailingBytes { remaining }) => {
                        assert_eq!(remaining, 3);
                        "trailing_bytes"
                    }
                    MalformedBatchReason::Framing(FramingError::LengthBelowHeader { .. }) => {
                        "length_below_header"
                    }
                    MalformedBatchReason::Framing(FramingError::LengthPastEnd { .. }) => {
                        "length_past_end"
                    }
                    MalformedBatchReason::ShortRecord { .. } => "short_record",
                    MalformedBatchReason::ShortTrailer { payload } => {
                        assert_eq!(payload, 4);
                        "short_trailer"
                    }
                    other => panic!("unexpected malformation {other}"),
                }),
            }
        }
        self.records += u64::from(records);
        self.digest.records += digest.records;
        self.digest.sum = self.digest.sum.wrapping_add(digest.sum);
        match trailer {
            Some(t) if items.is_empty() => self.trailer(&t, records),
            _ => {
                if items.is_empty() {
                    items.push("missing_done");
                }
                assert_eq!(items.len(), 1, "one item per hostile datagram: {items:?}");
                self.hostile_datagrams += 1;
                self.hostile_records += u64::from(records);
                *self.hostile_kinds.entry(items[0]).or_default() += 1;
            }
        }
    }

    /// Checks a trailer against the CPU's previous one.
    fn trailer(&mut self, t: &BatchTrailer, records: u32) {
        assert_eq!(t.status, 0);
        assert_eq!(t.records, records, "trailer counts the batch's records");
        let cpu = self.cpus.entry(t.cpu).or_default();
        assert!(!cpu.final_seen, "batch after FINAL on cpu {}", t.cpu);
        // The loadgen advances seq only for batches it handed over, and
        // nothing is lost after that: consecutive, no gap.
        assert_eq!(t.seq, cpu.last_seq + 1, "seq on cpu {}", t.cpu);
        assert_eq!(
            t.records_total,
            cpu.records_total + u64::from(t.records),
            "records_total on cpu {}",
            t.cpu
        );
        for i in 0..abi::DROP_CAUSES {
            assert_eq!(
                t.dropped_total[i],
                cpu.dropped_total[i] + t.dropped[i],
                "dropped_total[{i}] on cpu {}",
                t.cpu
            );
            cpu.dropped[i] += t.dropped[i];
        }
        cpu.dropped_total = t.dropped_total;
        cpu.last_seq = t.seq;
        cpu.records_total = t.records_total;
        cpu.batches += 1;
        if t.flags & abi::TRAILER_F_FINAL != 0 {
            cpu.final_seen = true;
        } else {
            assert!(records > 0, "only FINAL batches may be empty");
            assert_ne!(t.flags & (abi::TRAILER_F_FULL | abi::TRAILER_F_TIMER), 0);
        }
        self.batches += 1;
        *self.batch_sizes.entry(records).or_default() += 1;
    }
}

/// A recorder-like netlink socket.
struct RecorderSocket {
    sock: Socket,
    port: u32,
    peer: u32,
    buf: Vec<u8>,
    seq: u32,
    deadline: Instant,
}

/// What `recv` got.
enum Got {
    /// A datagram of this many bytes, in `buf`.
    Datagram(usize),
    /// The ACK of a request: (request type, errno).
    Ack(u16, i32),
    /// Nothing before the timeout.
    Timeout,
}

impl RecorderSocket {
    fn new(peer: u32, rcvbuf: Option<usize>) -> RecorderSocket {
        let mut sock = Socket::new(UNIT).expect("netlink socket");
        let addr = sock.bind_auto().expect("bind");
        if let Some(bytes) = rcvbuf {
            set_rcvbuf(&sock, bytes);
        }
        RecorderSocket {
            sock,
            port: addr.port_number(),
            peer,
            buf: vec![0; (1 << 20) + 4096],
            seq: 0,
            deadline: Instant::now() + TIMEOUT,
        }
    }

    fn send(&self, msg: &[u8]) {
        self.sock
            .send_to(msg, &SocketAddr::new(self.peer, 0), 0)
            .expect("send to loadgen");
    }

    /// Receives one datagram from the loadgen, waiting up to `wait`.
    fn recv(&mut self, wait: Duration) -> Got {
        let until = (Instant::now() + wait).min(self.deadline);
        loop {
            let now = Instant::now();
            assert!(now < self.deadline, "test timed out waiting for data");
            if now >= until {
                return Got::Timeout;
            }
            let mut pfd = libc::pollfd {
                fd: self.sock.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = (until - now).as_millis().clamp(1, 1000) as libc::c_int;
            // SAFETY: one live pollfd, count 1.
            let rc = unsafe { libc::poll(&raw mut pfd, 1, ms) };
            if rc <= 0 {
                continue;
            }
            let mut slice: &mut [u8] = &mut self.buf;
            match self
                .sock
                .recv_from(&mut slice, libc::MSG_DONTWAIT | libc::MSG_TRUNC)
            {
                Ok((n, from)) => {
                    assert!(n <= self.buf.len(), "datagram of {n} bytes truncated");
                    assert_eq!(from.port_number(), self.peer, "sender port id");
                    return classify(&self.buf[..n]);
                }
                // Overrun notice (our buffer was full): data were lost
                // before reaching us, which the trailers account for.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
                Err(e) => panic!("recv: {e}"),
            }
        }
    }

    /// Sends REGISTER with `config` and returns the ACK's errno.
    fn register(&mut self, config: &Config) -> i32 {
        let seq = self.next_seq();
        self.register_raw(&register_message(config, seq, self.port))
    }

    fn register_raw(&mut self, msg: &[u8]) -> i32 {
        self.send(msg);
        match self.recv(Duration::from_secs(20)) {
            Got::Ack(t, errno) => {
                assert_eq!(t, abi::MSG_REGISTER);
                errno
            }
            Got::Datagram(_) => panic!("data before the REGISTER ACK"),
            Got::Timeout => panic!("no REGISTER ACK"),
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    /// Receives until every one of `cpus` sent its FINAL batch.
    fn collect(&mut self, tally: &mut Tally, cpus: u32) {
        while !tally.all_final(cpus) {
            match self.recv(Duration::from_secs(60)) {
                Got::Datagram(n) => tally.absorb(&self.buf[..n]),
                Got::Ack(t, e) => panic!("unexpected ACK ({t:#x}, {e})"),
                Got::Timeout => panic!("stream stalled: {tally:?}"),
            }
        }
    }

    /// Sends UNREGISTER and absorbs what comes before its ACK.
    fn unregister(&mut self, tally: &mut Tally) -> i32 {
        let msg = unregister_message(self.next_seq(), self.port);
        self.send(&msg);
        loop {
            match self.recv(Duration::from_secs(60)) {
                Got::Datagram(n) => tally.absorb(&self.buf[..n]),
                Got::Ack(t, errno) => {
                    assert_eq!(t, abi::MSG_UNREGISTER);
                    return errno;
                }
                Got::Timeout => panic!("no UNREGISTER ACK"),
            }
        }
    }
}

/// An ACK is a datagram of one NLMSG_ERROR answering one of our requests.
fn classify(datagram: &[u8]) -> Got {
    let mut walker = BatchWalker::new(datagram);
    if let Some(Ok(item)) = walker.next() {
        if let BatchMessage::Error {
            errno,
            request: Some(request),
        } = item.message
        {
            let ours =
                request.msg_type == abi::MSG_REGISTER || request.msg_type == abi::MSG_UNREGISTER;
            if ours && request.flags & abi::NLM_F_ACK != 0 && walker.next().is_none() {
                return Got::Ack(request.msg_type, errno);
            }
        }
    }
    Got::Datagram(datagram.len())
}

fn set_rcvbuf(sock: &Socket, bytes: usize) {
    imp2_testkit::sys::set_rcvbuf(sock.as_raw_fd(), bytes)
        .unwrap_or_else(|e| panic!("SO_RCVBUF: {e}"));
}

/// Generous receive buffer so that nothing is dropped.
const BIG_RCVBUF: usize = 64 << 20;

/// Registers `config`, collects the whole stream of `cpus` CPUs,
/// unregisters; returns what arrived and the loadgen's report.
fn run(args: &[&str], config: &Config, cpus: u32, rcvbuf: usize) -> (Tally, Value) {
    let lg = Loadgen::spawn(args);
    let mut rx = RecorderSocket::new(lg.port, Some(rcvbuf));
    assert_eq!(rx.register(config), 0);
    let mut tally = Tally::default();
    rx.collect(&mut tally, cpus);
    assert_eq!(rx.unregister(&mut tally), 0);
    let (status, json) = lg.finish();
    assert!(status.success(), "exit {status}: {json}");
    check_report(&json);
    assert_eq!(num(&json, "port_id"), u64::from(rx.peer));
    assert_eq!(num(&json, "recorder_port_id"), u64::from(rx.port));
    assert_eq!(json["unregistered"], true);
    assert_eq!(json["stop"], "done");
    (tally, json)
}

/// What arrived equals what the loadgen says it sent, drops included.
fn check_against(tally: &Tally, json: &Value) {
    assert_eq!(tally.records, num(json, "sent"), "records received");
    assert_eq!(
        tally.records - tally.hostile_records + tally.dropped(),
        num(json, "generated")
    );
    assert_eq!(tally.dropped(), num(json, "dropped"));
    assert_eq!(tally.digest.to_hex(), json["digest"].as_str().unwrap());
    assert_eq!(tally.hostile_datagrams, num(json, "hostile_datagrams"));
    assert_eq!(tally.hostile_records, num(json, "hostile_records"));
    assert_eq!(tally.batches, num(json, "batches_sent"));
    let records_total: u64 = tally.cpus.values().map(|c| c.records_total).sum();
    assert_eq!(records_total, tally.records - tally.hostile_records);
}

// --- tests -----------------------------------------------------------------

#[test]
fn batched_stream_arrives_complete() {
    let config = Config {
        batch_bytes: 32768,
        batch_records: 300,
        ..Config::default()
    };
    let (tally, json) = run(
        &[
            "-n",
            "60000",
            "--cpus",
            "3",
            "--size",
            "64,200,1500",
            "--seed",
            "7",
        ],
        &config,
        3,
        BIG_RCVBUF,
    );
    check_against(&tally, &json);
    assert_eq!(num(&json, "generated"), 60_000);
    assert_eq!(num(&json, "dropped"), 0);
    assert_eq!(tally.records, 60_000);
    assert_eq!(num(&json, "filtered"), 0);
    // Round-robin over 3 CPUs, each with its own sequence space.
    assert_eq!(tally.cpus.len(), 3);
    let batches: Vec<u64> = tally.cpus.values().map(|c| c.batches).collect();
    assert!(batches.iter().max().unwrap() - batches.iter().min().unwrap() <= 1);
    // Batches respect both thresholds (300 records, 32768 - 512 bytes).
    assert!(tally.batch_sizes.keys().all(|&n| n <= 300));
    assert!(tally.batch_sizes.len() > 2, "{:?}", tally.batch_sizes);
    // The default mix: 2 families x 3 transports x 2 hooks.
    assert_eq!(tally.kinds.len(), 12, "{:?}", tally.kinds);
}

#[test]
fn fresh_synthesis_and_snaplen_cut() {
    let config = Config {
        snaplen: 100,
        ..Config::default()
    };
    let (tally, json) = run(
        &[
            "-n",
            "20000",
            "--pool",
            "0",
            "--size",
            "64,1500",
            "--ifindex",
            "3,4",
        ],
        &config,
        1,
        BIG_RCVBUF,
    );
    check_against(&tally, &json);
    assert_eq!(tally.records, 20_000);
    assert_eq!(num(&json, "snaplen"), 100);
}

#[test]
fn per_record_mode_sends_one_datagram_per_record() {
    let (tally, json) = run(
        &["-n", "3000", "--per-record", "--cpus", "2"],
        &Config::default(),
        2,
        BIG_RCVBUF,
    );
    check_against(&tally, &json);
    assert_eq!(tally.records, 3000);
    // 3000 one-record batches, then one empty FINAL per CPU.
    assert_eq!(tally.batch_sizes.get(&1), Some(&3000));
    assert_eq!(tally.batch_sizes.get(&0), Some(&2));
    assert_eq!(tally.batch_sizes.len(), 2);
    assert_eq!(num(&json, "batches_sent"), 3002);
}

#[test]
fn filters_of_the_config_apply() {
    let mut config = Config {
        families: abi::FAMILY_F_IPV4,
        hooks: abi::HOOK_F_LOCAL_OUT,
        ..Config::default()
    };
    config.allow_protocol(17);
    let (tally, json) = run(&["-n", "5000", "--seed", "3"], &config, 1, BIG_RCVBUF);
    check_against(&tally, &json);
    assert_eq!(tally.records, 5000);
    assert!(num(&json, "filtered") > 5000, "{json}");
    assert_eq!(
        tally.kinds.keys().copied().collect::<Vec<_>>(),
        vec![(2, 17, abi::HOOK_LOCAL_OUT)]
    );
}

#[test]
fn bad_configs_get_the_module_errno_then_a_good_one_is_accepted() {
    let lg = Loadgen::spawn(&["-n", "1000"]);
    let mut rx = RecorderSocket::new(lg.port, Some(BIG_RCVBUF));
    let bad = |f: &dyn Fn(&mut Config)| {
        let mut c = Config::default();
        f(&mut c);
        c
    };
    assert_eq!(rx.register(&bad(&|c| c.batch_bytes = 100)), -libc::EINVAL);
    assert_eq!(rx.register(&bad(&|c| c.abi_version = 99)), -libc::EPROTO);
    assert_eq!(rx.register(&bad(&|c| c.snaplen = 0)), -libc::EINVAL);
    assert_eq!(rx.register(&bad(&|c| c.hooks = 1 << 7)), -libc::EINVAL);
    // The filter flag without its extension, and an unknown flag.
    assert_eq!(rx.register(&bad(&|c| c.flags = 1)), -libc::EINVAL);
    assert_eq!(rx.register(&bad(&|c| c.flags = 1 << 3)), -libc::EINVAL);
    // A payload shorter than struct imp2_config.
    let mut short = register_message(&Config::default(), 77, rx.port);
    short.truncate(abi::NLMSG_HDRLEN + 8);
    short[..4].copy_from_slice(&((abi::NLMSG_HDRLEN + 8) as u32).to_ne_bytes());
    assert_eq!(rx.register_raw(&short), -libc::EINVAL);
    // A valid capture filter: this stand-in does not run filters, and says
    // so rather than accept one it would ignore.
    let filtered = Register::new(
        Config::default(),
        Some(RegisterFilter {
            program: None,
            ifindexes: vec![1],
        }),
    );
    assert_eq!(
        rx.register_raw(&register_filtered_message(&filtered, 78, rx.port)),
        -libc::EOPNOTSUPP
    );
    // Now a valid one: the stream follows.
    assert_eq!(rx.register(&Config::default()), 0);
    let mut tally = Tally::default();
    rx.collect(&mut tally, 1);
    assert_eq!(rx.unregister(&mut tally), 0);
    let (status, json) = lg.finish();
    assert!(status.success());
    check_report(&json);
    check_against(&tally, &json);
    assert_eq!(num(&json, "register_refused"), 8);
    assert_eq!(tally.records, 1000);
}

#[test]
fn second_registrant_gets_ebusy() {
    // Paced, so that the stream is still running when the second comes.
    let lg = Loadgen::spawn(&["-n", "20000", "--rate", "40000"]);
    let mut first = RecorderSocket::new(lg.port, Some(BIG_RCVBUF));
    assert_eq!(first.register(&Config::default()), 0);
    let mut second = RecorderSocket::new(lg.port, None);
    // The ACK may queue behind nothing: the second gets no batches.
    assert_eq!(second.register(&Config::default()), -libc::EBUSY);
    let mut tally = Tally::default();
    first.collect(&mut tally, 1);
    assert_eq!(first.unregister(&mut tally), 0);
    let (status, json) = lg.finish();
    assert!(status.success());
    check_against(&tally, &json);
    assert_eq!(num(&json, "register_busy"), 1);
    // Paced batches close on the flush timer (100 ms default) too.
    assert!(matches!(
        second.recv(Duration::from_millis(50)),
        Got::Timeout
    ));
}

#[test]
fn hostile_datagrams_hold_exactly_the_advertised_items() {
    let config = Config {
        batch_records: 64,
        ..Config::default()
    };
    let (tally, json) = run(
        &["-n", "20000", "--hostile-every", "3", "--cpus", "2"],
        &config,
        2,
        BIG_RCVBUF,
    );
    check_against(&tally, &json);
    let normal_batches = tally.batches - 2; // less the FINALs
    assert_eq!(tally.hostile_datagrams, normal_batches / 3);
    assert!(tally.hostile_records > 0);
    // All eight kinds, evenly cycled.
    assert_eq!(tally.hostile_kinds.len(), 8, "{:?}", tally.hostile_kinds);
    let counts: Vec<u64> = tally.hostile_kinds.values().copied().collect();
    assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
    assert_eq!(num(&json, "generated"), 20_000);
}

#[test]
fn overload_drops_are_counted_in_the_trailers() {
    let config = Config {
        batch_records: 512,
        ..Config::default()
    };
    let lg = Loadgen::spawn(&["-n", "300000", "--cpus", "2"]);
    // Room for about three 64 KiB batches (the kernel doubles the value).
    let mut rx = RecorderSocket::new(lg.port, Some(100_000));
    assert_eq!(rx.register(&config), 0);
    // Stopped at the start: the loadgen overruns the buffer.
    std::thread::sleep(Duration::from_millis(500));
    let mut tally = Tally::default();
    rx.collect(&mut tally, 2);
    assert_eq!(rx.unregister(&mut tally), 0);
    let (status, json) = lg.finish();
    assert!(status.success(), "{json}");
    check_report(&json);
    check_against(&tally, &json);
    let dropped = tally.dropped();
    assert!(dropped > 0, "nothing dropped: {json}");
    assert_eq!(tally.records + dropped, 300_000);
    assert_eq!(json["dropped_by_cause"][abi::DROP_RCVBUF], dropped);
    assert!(num(&json, "batches_dropped") > 0);
    assert_eq!(num(&json, "unreported_drops"), 0);
}

#[test]
fn unregister_mid_stream_stops_with_finals_then_ack() {
    let lg = Loadgen::spawn(&["-n", "100000000", "--rate", "100000", "--cpus", "2"]);
    let mut rx = RecorderSocket::new(lg.port, Some(BIG_RCVBUF));
    assert_eq!(rx.register(&Config::default()), 0);
    let mut tally = Tally::default();
    while tally.records < 5000 {
        match rx.recv(Duration::from_secs(30)) {
            Got::Datagram(n) => tally.absorb(&rx.buf[..n]),
            _ => panic!("no data"),
        }
    }
    assert_eq!(rx.unregister(&mut tally), 0);
    // The FINAL batches came before the ACK.
    assert!(tally.all_final(2));
    let (status, json) = lg.finish();
    assert!(status.success(), "{json}");
    check_report(&json);
    check_against(&tally, &json);
    assert_eq!(json["stop"], "unregistered");
    assert_eq!(json["unregistered"], true);
    assert!(num(&json, "generated") < 1_000_000);
}

#[test]
fn recorder_gone_stops_the_stream() {
    let lg = Loadgen::spawn(&["-n", "100000000", "--rate", "1000000"]);
    {
        let mut rx = RecorderSocket::new(lg.port, None);
        assert_eq!(rx.register(&Config::default()), 0);
        // Dropped here: its port id is gone.
    }
    let (status, json) = lg.finish();
    assert_eq!(status.code(), Some(1), "{json}");
    check_report(&json);
    assert_eq!(json["stop"], "refused");
    assert!(num(&json, "generated") < 100_000_000);
}

#[test]
fn no_register_times_out() {
    let lg = Loadgen::spawn(&["-n", "10", "--register-timeout", "0.2"]);
    let (status, json) = lg.finish();
    assert_eq!(status.code(), Some(2));
    assert_eq!(json["stop"], "register_timeout");
    assert_eq!(num(&json, "generated"), 0);
}

#[test]
fn unknown_requests_are_answered_like_netlink_rcv_skb() {
    let lg = Loadgen::spawn(&["-n", "10", "--register-timeout", "5"]);
    let mut rx = RecorderSocket::new(lg.port, None);
    // UNREGISTER before REGISTER: -ENOENT. Unknown request type:
    // -EOPNOTSUPP. A control type (< 0x10) is ignored: no answer.
    let seq = rx.next_seq();
    rx.send(&unregister_message(seq, rx.port));
    assert!(
        matches!(rx.recv(Duration::from_secs(10)), Got::Ack(abi::MSG_UNREGISTER, e) if e == -libc::ENOENT)
    );
    let mut odd = unregister_message(9, rx.port);
    let mut h = NlHeader::parse(&odd).unwrap();
    h.msg_type = 0x30;
    h.write(&mut odd);
    rx.send(&odd);
    match rx.recv(Duration::from_secs(10)) {
        Got::Datagram(n) => {
            let item = BatchWalker::new(&rx.buf[..n]).next().unwrap().unwrap();
            assert!(
                matches!(item.message, BatchMessage::Error { errno, .. } if errno == -libc::EOPNOTSUPP)
            );
        }
        _ => panic!("no answer to an unknown request"),
    }
    h.msg_type = abi::NLMSG_NOOP;
    h.write(&mut odd);
    rx.send(&odd);
    assert!(matches!(rx.recv(Duration::from_millis(300)), Got::Timeout));
    drop(lg);
}

//! imp2-record with `--source nflog:GROUP` against the real kernel NFLOG
//! producer, with real traffic.
//!
//! Each test builds its own pair of network namespaces joined by a veth
//! pair (10.199.N.1/fd00:199:N::1 sends, 10.199.N.2/fd00:199:N::2 receives),
//! installs an nftables table with `log group G` rules (and counters, the
//! independent truth) in the receiving namespace, runs imp2-record inside
//! it and imp2-flood in the sending one. Namespaces are removed by a guard
//! even when a test fails; every wait is bounded.
//!
//! Needs root (namespaces, NFLOG), `ip` (iproute2), `nft` (nftables) and
//! `tshark`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::*;
use imp2_format::log::{LogEvent, LogReader, StopCause};
use imp2_format::{Family, Hook, PacketRecord};
use imp2_testkit::VethPair;
use imp2_testkit::harness::run;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const LONG: Duration = Duration::from_secs(120);
const UDP_PORT: u16 = 9999;
const TCP_PORT: u16 = 9998;

/// Fails (never skips) when the machine cannot run these tests.
fn require_tools() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "the NFLOG tests need root (namespaces, NFLOG)");
    for (tool, package) in [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("tshark", "tshark"),
    ] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            found,
            "`{tool}` not found: apt-get install -y --no-install-recommends {package}"
        );
    }
}

/// Runs a command to completion (bounded), panicking with its output on
/// failure.
fn sh(program: &str, args: &[&str]) -> String {
    run(program, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Two namespaces joined by a veth pair (the harness's), numbered for the
/// test's addresses (`10.199.N.0/24`, `fd00:199:N::/64`) and groups.
struct Netns {
    pair: VethPair,
    n: u32,
}

impl std::ops::Deref for Netns {
    type Target = VethPair;
    fn deref(&self) -> &VethPair {
        &self.pair
    }
}

impl Netns {
    fn new() -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed) + 1;
        let pair = VethPair::new(
            &format!("imp2t{n}"),
            &format!("10.199.{n}"),
            Some(&format!("fd00:199:{n}:")),
        )
        .unwrap_or_else(|e| panic!("cannot set up the namespaces: {e}"));
        Netns { pair, n }
    }

    /// `ip netns exec NS PROGRAM ARGS`, output piped.
    fn exec(&self, ns: &str, program: &Path, args: &[&str]) -> Command {
        let mut cmd = self.pair.exec(ns, program, args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// Loads an nft ruleset into the receiving namespace.
    fn nft(&self, ruleset: &str) {
        self.pair
            .nft(ruleset, &std::env::temp_dir())
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Packet counters of the receiving namespace's rules, by comment.
    fn counters(&self) -> BTreeMap<String, u64> {
        self.pair.counters().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits (bounded) until NFLOG group `group` is bound in the receiving
    /// namespace.
    fn wait_bound(&self, group: u16, recorder: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let table = sh(
                "ip",
                &[
                    "netns",
                    "exec",
                    &self.b,
                    "cat",
                    "/proc/net/netfilter/nfnetlink_log",
                ],
            );
            let bound = table
                .lines()
                .any(|l| l.split_whitespace().next() == Some(group.to_string().as_str()));
            if bound {
                return;
            }
            if let Ok(Some(status)) = recorder.try_wait() {
                panic!("imp2-record exited before binding group {group}: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "NFLOG group {group} was not bound in time"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Kills a child still running when a test fails.
struct Running(Option<Child>);

impl Running {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    fn take(mut self) -> Child {
        self.0.take().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_nflog_recorder(ns: &Netns, group: u16, log: &Path, extra: &[&str]) -> Running {
    let source = format!("nflog:{group}");
    let mut args = vec![
        "--source",
        source.as_str(),
        "--json",
        "-o",
        log.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let child = ns
        .exec(&ns.b, &bin("imp2-record"), &args)
        .spawn()
        .expect("cannot start imp2-record");
    let mut running = Running(Some(child));
    ns.wait_bound(group, running.child());
    running
}

/// Runs imp2-flood in the sending namespace and returns its JSON report.
fn flood(ns: &Netns, args: &[&str]) -> serde_json::Value {
    let child = ns
        .exec(&ns.a, &bin("imp2-flood"), args)
        .spawn()
        .expect("cannot start imp2-flood");
    let out = wait_output(child, LONG, "imp2-flood");
    assert!(out.ok, "imp2-flood {args:?} failed: {}", out.stderr);
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("flood JSON: {e}: {}", out.stdout))
}

fn stop_recorder(recorder: Running) -> (serde_json::Value, Output) {
    let child = recorder.take();
    signal(&child, libc::SIGINT);
    let out = wait_output(child, LONG, "imp2-record");
    assert!(out.ok, "imp2-record failed: {}", out.stderr);
    (recorder_json(&out), out)
}

/// What a log holds, by kind.
#[derive(Debug, Default)]
struct Contents {
    records: u64,
    /// (family, protocol, hook) -> records
    kinds: BTreeMap<(u8, u8, u8), u64>,
    /// UDP payload indices (imp2-flood numbers its datagrams), by family.
    udp_indices: BTreeMap<u8, Vec<u64>>,
    /// Records whose data is shorter than their original length.
    cut: u64,
    error: Option<String>,
}

fn transport_offset(r: &PacketRecord<'_>) -> Option<usize> {
    match r.family {
        Family::IPV4 => Some(usize::from(r.data.first()? & 0x0f) * 4),
        Family::IPV6 => Some(40),
        _ => None,
    }
}

fn read_log(path: &Path) -> Contents {
    let reader = LogReader::open(path).expect("log opens");
    assert_eq!(
        reader.header().tsresol_digits,
        6,
        "NFLOG timestamps are microseconds"
    );
    let mut c = Contents::default();
    for event in reader.events() {
        match event {
            Ok(LogEvent::Record(r)) => {
                c.records += 1;
                *c.kinds
                    .entry((r.family.0, r.protocol, r.hook.0))
                    .or_default() += 1;
                if (r.data.len() as u64) < u64::from(r.orig_len) {
                    c.cut += 1;
                }
                if r.protocol == 17 {
                    let at = transport_offset(&r).unwrap() + 8;
                    let index = r
                        .data
                        .get(at..at + 8)
                        .map(|b| u64::from_be_bytes(b.try_into().unwrap()));
                    c.udp_indices
                        .entry(r.family.0)
                        .or_default()
                        .push(index.expect("UDP index captured"));
                }
            }
            Ok(_) => {}
            Err(e) => c.error = Some(e.to_string()),
        }
    }
    c
}

/// Assert that `indices` is exactly 0..n, each once.
fn assert_indices(indices: &[u64], n: u64, what: &str) {
    let set: BTreeSet<u64> = indices.iter().copied().collect();
    assert_eq!(indices.len() as u64, n, "{what}: records");
    assert_eq!(set.len() as u64, n, "{what}: duplicates");
    assert_eq!(set.first().copied(), Some(0), "{what}: first index");
    assert_eq!(set.last().copied(), Some(n - 1), "{what}: last index");
}

fn losses_are_zero(summary: &serde_json::Value) {
    for (k, v) in summary["losses"].as_object().unwrap() {
        assert_eq!(v.as_u64(), Some(0), "unexpected loss `{k}` in {summary}");
    }
}

/// tshark's view of a pcapng: (ip.proto or ipv6.nxt) per frame.
fn tshark_protocols(pcapng: &Path) -> BTreeMap<String, u64> {
    let out = sh(
        "tshark",
        &[
            "-n",
            "-r",
            pcapng.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "ip.proto",
            "-e",
            "ipv6.nxt",
        ],
    );
    let mut counts = BTreeMap::new();
    for line in out.lines() {
        // IPv6 in IPv4 (or ICMP errors quoting headers) could list several
        // values; the first is the packet's own.
        let proto = line
            .split(['\t', ','])
            .find(|s| !s.is_empty())
            .unwrap_or("none");
        *counts.entry(proto.to_string()).or_default() += 1;
    }
    counts
}

fn ruleset(group: u16) -> String {
    format!(
        "table inet imp2test {{
  chain input {{
    type filter hook input priority 0; policy accept;
    meta nfproto ipv4 udp dport {UDP_PORT} counter log group {group} drop comment \"udp4\"
    meta nfproto ipv6 udp dport {UDP_PORT} counter log group {group} drop comment \"udp6\"
    icmp type echo-request counter log group {group} comment \"icmp\"
    icmpv6 type echo-request counter log group {group} comment \"icmp6\"
    tcp dport {TCP_PORT} counter log group {group} comment \"tcp\"
  }}
  chain output {{
    type filter hook output priority 0; policy accept;
    icmp type echo-reply counter log group {group} comment \"reply\"
  }}
}}
"
    )
}

#[test]
fn real_traffic_is_recorded_exactly_and_the_pcapng_shows_it() {
    let _g = serial();
    require_tools();
    let ns = Netns::new();
    let group = 7100 + ns.n as u16;
    ns.nft(&ruleset(group));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let recorder = start_nflog_recorder(&ns, group, &log, &["-q"]);

    // A TCP sink in the receiving namespace, then all the traffic.
    let sink_addr = format!("{}:{TCP_PORT}", ns.v4(2));
    let sink = ns
        .exec(
            &ns.b,
            &bin("imp2-flood"),
            &["--tcp-sink", &sink_addr, "--timeout", "60"],
        )
        .spawn()
        .unwrap();
    let sink = Running(Some(sink));
    const UDP4: u64 = 200_000;
    const UDP6: u64 = 20_000;
    const ICMP: u64 = 50;
    const TCP_BYTES: u64 = 3_000_000;
    let udp4 = flood(
        &ns,
        &[
            "--udp",
            &format!("{}:{UDP_PORT}", ns.v4(2)),
            "-n",
            &UDP4.to_string(),
        ],
    );
    let udp6 = flood(
        &ns,
        &[
            "--udp",
            &format!("[{}]:{UDP_PORT}", ns.v6(2)),
            "-n",
            &UDP6.to_string(),
            "--size",
            "300",
        ],
    );
    let icmp = flood(
        &ns,
        &[
            "--icmp",
            &ns.v4(2),
            "--icmp-count",
            &ICMP.to_string(),
            "--tcp",
            &sink_addr,
            "--tcp-bytes",
            &TCP_BYTES.to_string(),
        ],
    );
    let icmp6 = flood(
        &ns,
        &["--icmp", &ns.v6(2), "--icmp-count", &ICMP.to_string()],
    );
    let sink = wait_output(sink.take(), LONG, "imp2-flood --tcp-sink");
    assert!(sink.ok, "tcp sink: {}", sink.stderr);
    let sink: serde_json::Value = serde_json::from_str(sink.stdout.trim()).unwrap();
    assert_eq!(u(&udp4, "udp_sent"), UDP4, "{udp4}");
    assert_eq!(u(&udp6, "udp_sent"), UDP6, "{udp6}");
    assert_eq!(u(&icmp, "icmp_sent"), ICMP, "{icmp}");
    assert_eq!(u(&icmp6, "icmp_sent"), ICMP, "{icmp6}");
    assert_eq!(u(&icmp, "tcp_bytes_sent"), TCP_BYTES, "{icmp}");
    assert_eq!(u(&sink, "tcp_received"), TCP_BYTES, "{sink}");

    // Echo replies leave a moment after the last request: give them time.
    std::thread::sleep(Duration::from_millis(300));
    let (summary, _) = stop_recorder(recorder);
    assert_stopped(&summary, &log, StopCause::Signal, "SIGINT");
    let counters = ns.counters();

    // recorded == sent, exactly, and == what the rules counted.
    assert_eq!(counters["udp4"], UDP4, "{counters:?}");
    assert_eq!(counters["udp6"], UDP6, "{counters:?}");
    assert_eq!(counters["icmp"], ICMP, "{counters:?}");
    assert_eq!(counters["icmp6"], ICMP, "{counters:?}");
    assert_eq!(counters["reply"], ICMP, "{counters:?}");
    let total: u64 = counters.values().sum();
    assert_eq!(u(&summary, "records"), total, "{summary}");
    assert_eq!(u(&summary, "nflog_packets"), total, "{summary}");
    losses_are_zero(&summary);
    assert_eq!(
        summary["unregistered"], true,
        "UNBIND acknowledged: {summary}"
    );
    // Echo replies are logged at LOCAL_OUT, where NFLOG sends no timestamp.
    assert_eq!(u(&summary, "nflog_receive_time_stamps"), ICMP, "{summary}");

    let c = read_log(&log);
    assert_eq!(c.error, None);
    assert_eq!(c.records, total);
    let (v4, v6) = (Family::IPV4.0, Family::IPV6.0);
    let local_in = 1;
    let out = Hook::LOCAL_OUT.0;
    assert_eq!(
        c.kinds.get(&(v4, 17, local_in)),
        Some(&UDP4),
        "{:?}",
        c.kinds
    );
    assert_eq!(
        c.kinds.get(&(v6, 17, local_in)),
        Some(&UDP6),
        "{:?}",
        c.kinds
    );
    assert_eq!(
        c.kinds.get(&(v4, 1, local_in)),
        Some(&ICMP),
        "{:?}",
        c.kinds
    );
    assert_eq!(
        c.kinds.get(&(v6, 58, local_in)),
        Some(&ICMP),
        "{:?}",
        c.kinds
    );
    assert_eq!(c.kinds.get(&(v4, 1, out)), Some(&ICMP), "{:?}", c.kinds);
    assert_eq!(
        c.kinds.get(&(v4, 6, local_in)),
        Some(&counters["tcp"]),
        "{:?}",
        c.kinds
    );
    assert_indices(&c.udp_indices[&v4], UDP4, "UDP/IPv4");
    assert_indices(&c.udp_indices[&v6], UDP6, "UDP/IPv6");

    // The pcapng shows the same packets.
    let verify = run_tool("imp2-info", &["--verify", log.to_str().unwrap()]);
    assert!(
        verify.ok,
        "imp2-info --verify: {}{}",
        verify.stdout, verify.stderr
    );
    let pcapng = dir.path().join("run.pcapng");
    let conv = run_tool(
        "imp2-convert",
        &[log.to_str().unwrap(), "-o", pcapng.to_str().unwrap()],
    );
    assert!(conv.ok, "{}", conv.stderr);
    let seen = tshark_protocols(&pcapng);
    let want: BTreeMap<String, u64> = [
        ("17".to_string(), UDP4 + UDP6),
        ("1".to_string(), 2 * ICMP),
        ("58".to_string(), ICMP),
        ("6".to_string(), counters["tcp"]),
    ]
    .into();
    assert_eq!(seen, want, "tshark's protocols");
}

#[test]
fn overload_while_stopped_is_found_from_sequence_gaps() {
    let _g = serial();
    require_tools();
    let ns = Netns::new();
    let group = 7200 + ns.n as u16;
    ns.nft(&ruleset(group));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    // A small receive buffer (a few kernel buffers) so that the stop
    // overflows it.
    let recorder = start_nflog_recorder(&ns, group, &log, &["-q", "--rcvbuf", "1M"]);
    const N: u64 = 400_000;
    let sender = ns
        .exec(
            &ns.a,
            &bin("imp2-flood"),
            &[
                "--udp",
                &format!("{}:{UDP_PORT}", ns.v4(2)),
                "-n",
                &N.to_string(),
                "--rate",
                "100000",
            ],
        )
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    signal(recorder.0.as_ref().unwrap(), libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(2));
    signal(recorder.0.as_ref().unwrap(), libc::SIGCONT);
    // The flood goes on after the stop: later sequence numbers reveal the
    // gap.
    let sent = wait_output(sender, LONG, "imp2-flood");
    assert!(sent.ok, "{}", sent.stderr);
    let sent: serde_json::Value = serde_json::from_str(sent.stdout.trim()).unwrap();
    assert_eq!(u(&sent, "udp_sent"), N, "{sent}");
    let (summary, _) = stop_recorder(recorder);
    assert_eq!(ns.counters()["udp4"], N);
    let recorded = u(&summary, "records");
    let losses = &summary["losses"];
    let gap = u(losses, "gap_records");
    assert!(
        gap > 0,
        "the stop must overflow the receive buffer: {summary}"
    );
    assert_eq!(recorded + gap, N, "recorded + lost == sent: {summary}");
    assert_eq!(u(losses, "records_lost"), gap, "{summary}");
    for k in ["malformed_messages", "truncated_batches", "kernel_rcvbuf"] {
        assert_eq!(u(losses, k), 0, "{k}: {summary}");
    }
    assert!(u(&summary, "socket_drops") > 0, "{summary}");
    // The log holds exactly the recorded packets, the losses in its footer.
    let c = read_log(&log);
    assert_eq!(c.error, None);
    assert_eq!(c.records, recorded);
    let set: BTreeSet<u64> = c.udp_indices[&Family::IPV4.0].iter().copied().collect();
    assert_eq!(set.len() as u64, recorded, "no duplicates");
    let info = run_tool("imp2-info", &["--json", log.to_str().unwrap()]);
    assert!(info.ok, "{}", info.stderr);
    let info: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(u(&info["losses"], "records_lost"), gap, "{info}");
}

#[test]
fn a_group_nobody_logs_to_gets_the_rule_hint() {
    let _g = serial();
    require_tools();
    let ns = Netns::new();
    let group = 7300 + ns.n as u16;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let source = format!("nflog:{group}");
    let child = ns
        .exec(
            &ns.b,
            &bin("imp2-record"),
            &[
                "--source",
                &source,
                "--duration",
                "4.5",
                "--json",
                "-o",
                log.to_str().unwrap(),
            ],
        )
        .spawn()
        .unwrap();
    let out = wait_output(child, LONG, "imp2-record");
    assert!(out.ok, "{}", out.stderr);
    let summary = recorder_json(&out);
    assert_eq!(u(&summary, "records"), 0);
    assert_eq!(summary["nflog_hint_shown"], true, "{summary}");
    assert_stopped(&summary, &log, StopCause::Duration, "4.5 s");
    assert_eq!(summary["stopped_by"], "duration 4.5 s reached");
    let hint = out
        .stderr
        .lines()
        .find(|l| l.contains("no packets from NFLOG group"))
        .unwrap_or_else(|| panic!("no hint in: {}", out.stderr));
    assert!(
        hint.contains(&format!("nft add rule inet filter input log group {group}")),
        "{hint}"
    );
    assert!(
        hint.contains(&format!("iptables -A INPUT -j NFLOG --nflog-group {group}")),
        "{hint}"
    );
    // The default snap length (65535) is cut to NFLOG's 65531 too, without
    // a word: only a snap length asked for is worth a notice.
    assert!(!out.stderr.contains("NFLOG's limit"), "{}", out.stderr);
}

/// `-s` above what NFLOG copies is cut to its limit, and the recorder says
/// so once at the start instead of silently; the log's header has the
/// snap length really used.
#[test]
fn an_explicit_snaplen_above_nflogs_limit_is_noticed() {
    let _g = serial();
    require_tools();
    let ns = Netns::new();
    let group = 7500 + ns.n as u16;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let source = format!("nflog:{group}");
    let child = ns
        .exec(
            &ns.b,
            &bin("imp2-record"),
            &[
                "--source",
                &source,
                "-s",
                "65535",
                "--duration",
                "0.5",
                "-o",
                log.to_str().unwrap(),
            ],
        )
        .spawn()
        .unwrap();
    let out = wait_output(child, LONG, "imp2-record");
    assert!(out.ok, "{}", out.stderr);
    let notices: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("NFLOG's limit"))
        .collect();
    assert_eq!(
        notices,
        ["imp2-record: -s 65535: packets are cut at 65531 bytes, NFLOG's limit"],
        "{}",
        out.stderr
    );
    let reader = LogReader::open(&log).unwrap();
    assert_eq!(reader.header().snaplen, 65531);
    assert_eq!(
        log_stop(&log),
        Some(imp2_format::log::StopReason::new(
            StopCause::Duration,
            "0.5 s"
        ))
    );
}

#[test]
fn a_group_bound_by_another_program_is_named() {
    let _g = serial();
    require_tools();
    let ns = Netns::new();
    let group = 7400 + ns.n as u16;
    let dir = tempfile::tempdir().unwrap();
    let first = start_nflog_recorder(&ns, group, &dir.path().join("first.log"), &["-q"]);
    let first_pid = first.0.as_ref().unwrap().id();
    let source = format!("nflog:{group}");
    let second_log = dir.path().join("second.log");
    let second = ns
        .exec(
            &ns.b,
            &bin("imp2-record"),
            &["--source", &source, "-o", second_log.to_str().unwrap()],
        )
        .spawn()
        .unwrap();
    let out = wait_output(second, Duration::from_secs(30), "imp2-record (second)");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", out.stderr);
    assert!(
        lines[0].contains(&format!(
            "NFLOG group {group} is already bound by another program (imp2-record, pid {first_pid})"
        )),
        "{}",
        lines[0]
    );
    assert!(!second_log.exists(), "no empty log is left behind");
    let (summary, _) = stop_recorder(first);
    assert_eq!(u(&summary, "records"), 0);
}

#[test]
fn usage_errors_are_explained() {
    let _g = serial();
    for (args, want) in [
        (
            &["--source", "nflog"][..],
            "expected `imp2` or `nflog:GROUP`",
        ),
        (
            &["--source", "nflog:70000"][..],
            "an NFLOG group is a number 0-65535",
        ),
        (
            &["--source", "nflog:1", "--proto", "udp"][..],
            "the NFLOG rule selects them",
        ),
        (
            &["--source", "nflog:1", "--nflog-bufsize", "1M"][..],
            "--nflog-bufsize must be 4096-131072 bytes, not 1048576",
        ),
        (
            // Beyond u32: named as typed, not as some clamped value.
            &["--source", "nflog:1", "--nflog-bufsize", "10G"][..],
            "--nflog-bufsize must be 4096-131072 bytes, not 10737418240",
        ),
    ] {
        let out = run_tool(
            "imp2-record",
            &[&["-o", "/nonexistent/x.log"][..], args].concat(),
        );
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn without_cap_net_admin_the_error_says_so() {
    let _g = serial();
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    // The unprivileged user must be able to create (and remove) the log.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let log = dir.path().join("run.log");
    let recorder = bin("imp2-record");
    let child = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&recorder)
        .args(["--source", "nflog:7399", "-q", "-o", log.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run setpriv (util-linux)");
    let out = wait_output(child, Duration::from_secs(30), "imp2-record (unprivileged)");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        "imp2-record: configuring NFLOG needs CAP_NET_ADMIN: run imp2-record as root or give \
         it cap_net_admin (setcap cap_net_admin+ep imp2-record)"
    );
    assert!(!log.exists(), "no empty log is left behind");
}

/// A disk that fills mid-run ends the run with one clear error, and what
/// arrived after it is counted in the log, not dropped silently: the log
/// holds the first packets in order, and `unwritten` the rest the recorder
/// received before NFLOG stopped sending. The recorder sees NFLOG's
/// acknowledgement even so, so it does not wait out the drain timeout.
#[test]
fn a_full_disk_counts_what_it_could_not_write() {
    let _g = serial();
    require_tools();
    let ns = Netns::new();
    let group = 7400 + ns.n as u16;
    ns.nft(&ruleset(group));
    let small = SmallTmpfs::for_test("1m");
    let log = small.path().join("run.log");
    let recorder = start_nflog_recorder(&ns, group, &log, &["-q"]);
    // About 100 bytes per record in the log: the disk fills after
    // some 10 000 of them, and the flood goes on for a while after.
    const N: u64 = 30_000;
    let sent = flood(
        &ns,
        &[
            "--udp",
            &format!("{}:{UDP_PORT}", ns.v4(2)),
            "-n",
            &N.to_string(),
            "--rate",
            "20000",
        ],
    );
    assert_eq!(u(&sent, "udp_sent"), N, "{sent}");
    let out = wait_output(recorder.take(), LONG, "imp2-record");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let disk_full: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("disk full"))
        .collect();
    assert_eq!(disk_full.len(), 1, "{}", out.stderr);
    assert!(!out.stderr.contains("acknowledge"), "{}", out.stderr);
    let summary = recorder_json(&out);
    let recorded = u(&summary, "records");
    let losses = &summary["losses"];
    let unwritten = u(losses, "unwritten");
    assert!(recorded > 1000, "{summary}");
    assert!(
        unwritten > 0,
        "packets arrived after the disk filled: {summary}"
    );
    // Every packet the recorder received is either in the log or
    // counted as unwritten; nothing was lost on the way.
    assert_eq!(
        recorded + unwritten,
        u(&summary, "nflog_packets"),
        "{summary}"
    );
    assert_eq!(u(losses, "records_lost"), unwritten, "{summary}");
    assert!(recorded + unwritten <= N, "{summary}");

    let c = read_log(&log);
    assert_eq!(c.error, None);
    assert_eq!(c.records, recorded);
    assert_indices(&c.udp_indices[&Family::IPV4.0], recorded, "UDP/IPv4");
    let verify = run_tool("imp2-info", &["--verify", log.to_str().unwrap()]);
    assert!(verify.ok, "{}{}", verify.stdout, verify.stderr);
    let info = run_tool("imp2-info", &["--json", log.to_str().unwrap()]);
    let info: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(u(&info["losses"], "unwritten"), unwritten, "{info}");
    assert_eq!(u(&info["losses"], "records_lost"), unwritten, "{info}");
    // The log says why it ends early, for whoever finds it later: cause 4,
    // with the OS's words.
    assert_stopped(
        &summary,
        &log,
        StopCause::WriteError,
        "No space left on device",
    );
    assert_eq!(
        info["stop"],
        serde_json::json!({"cause": "write_error", "code": 4, "detail": "No space left on device"}),
        "{info}"
    );
}

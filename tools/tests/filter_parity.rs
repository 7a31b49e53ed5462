//! Reading filters select what tcpdump selects: for each of 26 expressions,
//! `imp2-convert LOG -o - -f pcap EXPR` writes exactly the packets that
//! Debian's `tcpdump -r ALL.pcap -w - EXPR` keeps from the unfiltered
//! export (same order, same bytes, same lengths), on a log with IPv4 and
//! IPv6, TCP (with and without SYN), UDP, ICMP and ICMPv6, GRE, IPv4 and
//! IPv6 fragments, an IPv6 hop-by-hop header, several interfaces, both
//! directions and snaplen cuts. Also `-c`, `--from`/`--to`, `-i`, `--hook`
//! against the log's own records, and with `--linktype raw` (where `len`
//! is the IP length).
//!
//! tcpdump is installed with apt-get when missing (root); otherwise the
//! test fails saying what to install.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use imp2_format::log::{Interface, LogHeader, LogWriter};
use imp2_format::{Family, Hook, PacketRecord};
use imp2_testkit::synth::{PacketSynth, SynthOptions, Transport};

const CONVERT: &str = env!("CARGO_BIN_EXE_imp2-convert");
const SNAPLEN: usize = 300;
const T0: u64 = 1_796_465_700_000_000_000; // 2026-12-05T10:15:00Z
const STEP: u64 = 1_000_000; // 1 ms apart

/// A record as written: (time, ifindex, hook, original length, data).
type Written = (u64, u32, Hook, u32, Vec<u8>);

const EXPRESSIONS: &[&str] = &[
    "ip",
    "ip6",
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "ip proto 47",
    "tcp[tcpflags] & tcp-syn != 0",
    "ip6 and udp",
    "ip6 and tcp",
    "not udp",
    "len > 200",
    "greater 300",
    "less 80",
    "ip[6:2] & 0x1fff != 0",
    "ip[6] & 0x20 != 0",
    "ip6 proto 44",
    "inbound",
    "outbound",
    "ifindex 2",
    "ifindex 7 and udp",
    "host 10.0.0.1",
    "net 10.0.0.0/30 and not icmp",
    "ip6 host fd00::2",
    "port 53 or port 443",
    "portrange 1000-2000 and tcp",
];

/// The path of tcpdump, installed with apt-get when missing (as root).
fn tcpdump() -> PathBuf {
    let find = || {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("tcpdump"))
                .find(|p| p.is_file())
        })
    };
    if let Some(p) = find() {
        return p;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", "tcpdump"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    find().expect(
        "tcpdump is not installed and could not be: apt-get install -y tcpdump (as \
         tools/test-all.sh does)",
    )
}

/// Hand-made packets the synthesiser does not make: fragments, a hop-by-hop
/// header, GRE, SYNs, ports 53 and 443, other addresses.
fn extras() -> Vec<(Family, Vec<u8>)> {
    let v4 = |proto: u8, frag: u16, src: [u8; 4], dst: [u8; 4], l4: &[u8]| {
        let total = (20 + l4.len()) as u16;
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0x12, 0x34]);
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&[64, proto, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(l4);
        (Family::IPV4, p)
    };
    let v6 = |next: u8, ext: &[u8], last: u8, l4: &[u8]| {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&((ext.len() + l4.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        let mut a = [0u8; 16];
        a[0] = 0xfd;
        a[15] = 1;
        p.extend_from_slice(&a);
        a[15] = last;
        p.extend_from_slice(&a);
        p.extend_from_slice(ext);
        p.extend_from_slice(l4);
        (Family::IPV6, p)
    };
    let udp = |sport: u16, dport: u16, n: usize| {
        let mut u = sport.to_be_bytes().to_vec();
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&((8 + n) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend(std::iter::repeat_n(0xab, n));
        u
    };
    let tcp = |sport: u16, dport: u16, flags: u8| {
        let mut t = sport.to_be_bytes().to_vec();
        t.extend_from_slice(&dport.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        t
    };
    let a = [10, 0, 0, 1];
    let b = [10, 0, 0, 2];
    let c = [192, 168, 7, 9];
    vec![
        v4(17, 0x2000, a, b, &udp(5000, 53, 400)), // first fragment, MF
        v4(17, 0x0032, a, b, &[0xab; 120]),        // later fragment
        v4(6, 0, a, c, &tcp(40000, 443, 0x02)),    // SYN
        v4(6, 0, c, a, &tcp(443, 40000, 0x12)),    // SYN-ACK
        v4(6, 0, a, c, &tcp(1500, 1999, 0x10)),    // ACK in the port range
        v4(47, 0, b, c, &[0, 0, 0x08, 0, 0xaa, 0xbb, 0xcc, 0xdd]), // GRE
        v4(17, 0, c, b, &udp(53, 33333, 30)),
        v6(0, &[17, 0, 1, 4, 0, 0, 0, 0], 2, &udp(1234, 53, 10)), // hop-by-hop
        v6(44, &[17, 0, 0, 1, 0, 0, 0, 9], 2, &udp(7, 7, 500)),   // fragment, first
        v6(44, &[17, 0, 0, 0xb8, 0, 0, 0, 9], 3, &[0xab; 64]),    // fragment, later
        v6(6, &[], 2, &tcp(50000, 443, 0x02)),
        v6(58, &[], 2, &[128, 0, 0, 0, 0, 1, 0, 1]), // echo request
    ]
}

/// Writes the log: the synthesiser's mix and the extras, on interfaces
/// 1, 2, 7 and 9 (7 named late, 9 never), both hooks, cut at SNAPLEN.
fn write_log(dir: &Path) -> (PathBuf, Vec<Written>) {
    let path = dir.join("mix.log");
    let header = LogHeader {
        created_ns: T0,
        snaplen: SNAPLEN as u32,
        source: "filter parity test".into(),
        hostname: "testhost".into(),
        kernel_release: "6.1.0".into(),
        tsresol_digits: 9,
        interfaces: vec![
            Interface {
                ifindex: 1,
                name: "lo".into(),
            },
            Interface {
                ifindex: 2,
                name: "eth0".into(),
            },
        ],
    };
    let mut synth = PacketSynth::new(
        7,
        SynthOptions {
            sizes: vec![28, 60, 92, 250, 1400],
            families: vec![Family::IPV4, Family::IPV6],
            transports: Transport::ALL.to_vec(),
            hooks: vec![Hook::PRE_ROUTING, Hook::LOCAL_OUT],
            ifindexes: vec![1, 2, 7, 9],
            flow_len: 3,
        },
    )
    .unwrap();
    let extras = extras();
    let mut w = LogWriter::create(&path, &header).unwrap();
    let mut buf = vec![0u8; SNAPLEN];
    let mut kept = Vec::new();
    for i in 0..600u64 {
        if i == 100 {
            w.add_interface(&Interface {
                ifindex: 7,
                name: "wg0".into(),
            })
            .unwrap();
        }
        let ts = T0 + i * STEP;
        let r = if i % 4 == 3 {
            let (family, data) = &extras[(i as usize / 4) % extras.len()];
            let cut = data.len().min(SNAPLEN);
            PacketRecord {
                tstamp_ns: ts,
                ifindex: [1, 2, 7, 9][(i as usize / 3) % 4],
                orig_len: data.len() as u32,
                hook: if i % 8 == 3 {
                    Hook::PRE_ROUTING
                } else {
                    Hook::LOCAL_OUT
                },
                family: *family,
                protocol: 255,
                data: &data[..cut],
            }
        } else {
            synth.next_record(&mut buf, SNAPLEN, ts)
        };
        w.append(&r).unwrap();
        kept.push((ts, r.ifindex, r.hook, r.orig_len, r.data.to_vec()));
        if i % 64 == 63 {
            w.commit().unwrap();
        }
    }
    w.finish(T0 + 600 * STEP).unwrap();
    (path, kept)
}

/// The packets of a classic pcap: (original length, captured bytes).
fn pcap_packets(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    assert!(bytes.len() >= 24, "no pcap header ({} bytes)", bytes.len());
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert!(
        matches!(u32_at(0), 0xa1b2_c3d4 | 0xa1b2_3c4d),
        "not a little-endian pcap"
    );
    let mut out = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let (caplen, len) = (u32_at(at + 8) as usize, u32_at(at + 12));
        out.push((len, bytes[at + 16..at + 16 + caplen].to_vec()));
        at += 16 + caplen;
    }
    out
}

fn convert(log: &Path, args: &[&str]) -> (Vec<(u32, Vec<u8>)>, String) {
    let out = Command::new(CONVERT)
        .arg(log)
        .args(["-o", "-", "-f", "pcap"])
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "imp2-convert {args:?}: {stderr}");
    (pcap_packets(&out.stdout), stderr)
}

fn tcpdump_filter(all: &Path, expr: &str) -> Vec<(u32, Vec<u8>)> {
    let out = Command::new(tcpdump())
        .args(["-r"])
        .arg(all)
        .args(["-w", "-", expr])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tcpdump {expr}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pcap_packets(&out.stdout)
}

#[test]
fn every_expression_selects_what_tcpdump_selects() {
    let dir = tempfile::tempdir().unwrap();
    let (log, records) = write_log(dir.path());
    for (linktype, extra) in [("sll2", &[][..]), ("raw", &["--linktype", "raw"][..])] {
        // The unfiltered export, which tcpdump filters.
        let all = dir.path().join(format!("all-{linktype}.pcap"));
        let out = Command::new(CONVERT)
            .arg(&log)
            .arg("-o")
            .arg(&all)
            .args(["-f", "pcap"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let everything = pcap_packets(&std::fs::read(&all).unwrap());
        assert_eq!(everything.len(), records.len());
        for expr in EXPRESSIONS {
            // ifindex, inbound and outbound exist only with a link-layer
            // header that carries them (SLL2).
            if linktype == "raw" && (expr.contains("ifindex") || expr.contains("bound")) {
                continue;
            }
            let mut args = extra.to_vec();
            args.extend(expr.split_whitespace());
            let (ours, stderr) = convert(&log, &args);
            let theirs = tcpdump_filter(&all, expr);
            assert_eq!(
                ours.len(),
                theirs.len(),
                "{linktype} `{expr}`: imp2-convert kept {}, tcpdump {}",
                ours.len(),
                theirs.len()
            );
            assert_eq!(ours, theirs, "{linktype} `{expr}`: different packets");
            assert!(
                !ours.is_empty() && ours.len() < records.len(),
                "{linktype} `{expr}` selects {} of {}: the comparison says nothing",
                ours.len(),
                records.len()
            );
            assert!(
                stderr.contains(&format!(
                    "{} of {} records matched",
                    ours.len(),
                    records.len()
                )),
                "{stderr}"
            );
        }
    }
}

#[test]
fn count_time_interfaces_and_hooks_select_records() {
    let dir = tempfile::tempdir().unwrap();
    let (log, records) = write_log(dir.path());
    let data = |sel: &dyn Fn(&Written) -> bool| -> Vec<Vec<u8>> {
        records
            .iter()
            .filter(|r| sel(r))
            .map(|r| r.4.clone())
            .collect()
    };
    let ours = |args: &[&str]| -> Vec<Vec<u8>> {
        convert(&log, &[&["--linktype", "raw"], args].concat())
            .0
            .into_iter()
            .map(|(_, d)| d)
            .collect()
    };
    // -c: the first N that match.
    let udp_first5: Vec<Vec<u8>> = ours(&["udp"]).into_iter().take(5).collect();
    assert_eq!(ours(&["-c", "5", "udp"]), udp_first5);
    // --from (inclusive) / --to (exclusive), both forms of time.
    let (from, to) = (T0 + 100 * STEP, T0 + 250 * STEP);
    let want = data(&|r| r.0 >= from && r.0 < to);
    assert_eq!(want.len(), 150);
    assert_eq!(
        ours(&["--from", "1796465700.1", "--to", "2026-12-05T10:15:00.25Z"]),
        want
    );
    // -i by name: wg0 is named only from record 100 on, so its earlier
    // records (ifindex 7 unnamed then) are if7.
    let wg0 = data(&|r| r.1 == 7 && r.0 >= T0 + 100 * STEP);
    assert!(!wg0.is_empty());
    assert_eq!(ours(&["-i", "wg0"]), wg0);
    let early7 = data(&|r| r.1 == 7 && r.0 < T0 + 100 * STEP);
    assert!(!early7.is_empty());
    assert_eq!(ours(&["-i", "if7"]), early7);
    assert_eq!(ours(&["-i", "lo,eth0"]), data(&|r| r.1 == 1 || r.1 == 2));
    // --hook
    assert_eq!(ours(&["--hook", "out"]), data(&|r| r.2 == Hook::LOCAL_OUT));
    // all together, with an expression
    let (n, stderr) = convert(
        &log,
        &[
            "-i",
            "eth0",
            "--hook",
            "pre",
            "--from",
            "1796465700.2",
            "-c",
            "3",
            "ip6",
        ],
    );
    assert!(n.len() <= 3, "{stderr}");
}

#[test]
fn a_bad_expression_is_a_usage_error_that_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = write_log(dir.path());
    let out_file = dir.path().join("x.pcap");
    for (args, want) in [
        (vec!["udp", "port"], "syntax error"),
        (vec!["ether", "host", "1:2:3:4:5:6"], "link-layer header"),
        (vec!["--from", "tomorrow"], "is not a time"),
        (vec!["--from", "2", "--to", "1"], "--to must be later"),
        (vec!["--hook", "sideways"], "unknown hook"),
        (vec!["-c", "0"], "at least 1"),
    ] {
        let out = Command::new(CONVERT)
            .arg(&log)
            .arg("-o")
            .arg(&out_file)
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(!out_file.exists(), "{args:?} created the output");
    }
}

#[test]
fn imp2_info_counts_what_the_filter_keeps_and_verifies_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (log, records) = write_log(dir.path());
    let info = env!("CARGO_BIN_EXE_imp2-info");
    for expr in ["udp", "ip6 and tcp", "inbound", "len > 200"] {
        let (kept, _) = convert(&log, &expr.split_whitespace().collect::<Vec<_>>());
        let out = Command::new(info)
            .arg(&log)
            .arg("--json")
            .args(expr.split_whitespace())
            .output()
            .unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["records"], kept.len() as u64, "{expr}: {v}");
        assert_eq!(v["filter"]["matched"], kept.len() as u64, "{expr}");
        assert_eq!(v["filter"]["examined"], records.len() as u64, "{expr}");
        assert_eq!(v["filter"]["expression"], *expr);
        // The footer check covers every record, whatever the filter.
        assert_eq!(v["integrity"]["footer_matches"], true, "{expr}: {v}");
        let text = Command::new(info)
            .arg(&log)
            .args(expr.split_whitespace())
            .output()
            .unwrap();
        let text = String::from_utf8(text.stdout).unwrap();
        assert!(
            text.contains(&format!(
                "`{expr}`: {} of {} records match",
                kept.len(),
                records.len()
            )),
            "{text}"
        );
    }
    let verify = Command::new(info)
        .arg(&log)
        .args(["--verify", "icmp"])
        .output()
        .unwrap();
    let text = String::from_utf8(verify.stdout).unwrap();
    assert!(
        text.contains(&format!("ok, {} records", records.len())),
        "{text}"
    );
    // Without a filter there is no filter section.
    let plain = Command::new(info).arg(&log).arg("--json").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert!(v["filter"].is_null(), "{v}");
}

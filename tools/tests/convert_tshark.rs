//! The end-to-end check of export: a log written with `LogWriter` is
//! converted by the built `imp2-convert` to pcapng and pcap, and tshark must
//! agree with the log (and with `imp2-info --json`) on every packet: count,
//! timestamps to the nanosecond, captured and original lengths (the log's
//! plus the 20-byte SLL2 header, or the log's with `--linktype raw`),
//! interface names, ifindex and direction; and it must read the drop count
//! from the ISB.
//!
//! tshark is required: without it these tests fail and say how to get it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use imp2_format::log::{Interface, LogHeader, LogWriter, Losses};
use imp2_format::{Family, Hook, PacketRecord};
use serde_json::Value;

const CONVERT: &str = env!("CARGO_BIN_EXE_imp2-convert");
const INFO: &str = env!("CARGO_BIN_EXE_imp2-info");
const SNAPLEN: u32 = 96;
/// Bytes of the SLL2 header before each packet (the default link type).
const SLL2: u64 = 20;

// ---------------------------------------------------------------------------
// Packets with valid headers and checksums.

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    let mut odd: Option<u8> = None;
    for chunk in chunks {
        for &b in *chunk {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;

/// Transport header + payload, with its checksum filled in for the given
/// pseudo-header bytes (empty for ICMPv4, which has none).
fn transport(proto: u8, payload_len: usize, pseudo: &[u8], seed: u8) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len)
        .map(|i| seed.wrapping_add(i as u8))
        .collect();
    let (mut seg, sum_at) = match proto {
        UDP => {
            let len = (8 + payload_len) as u16;
            let mut h = vec![0u8; 8];
            h[0..2].copy_from_slice(&40000u16.to_be_bytes());
            h[2..4].copy_from_slice(&50001u16.to_be_bytes());
            h[4..6].copy_from_slice(&len.to_be_bytes());
            (h, 6)
        }
        TCP => {
            let mut h = vec![0u8; 20];
            h[0..2].copy_from_slice(&40001u16.to_be_bytes());
            h[2..4].copy_from_slice(&50002u16.to_be_bytes());
            h[4..8].copy_from_slice(&0x1000_0000u32.to_be_bytes());
            h[12] = 5 << 4; // data offset 5 words
            h[13] = 0x18; // PSH, ACK
            h[14..16].copy_from_slice(&64240u16.to_be_bytes());
            (h, 16)
        }
        ICMP | ICMPV6 => {
            let mut h = vec![0u8; 8];
            h[0] = if proto == ICMP { 8 } else { 128 }; // echo request
            h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
            h[6..8].copy_from_slice(&u16::from(seed).to_be_bytes());
            (h, 2)
        }
        _ => unreachable!(),
    };
    seg.extend_from_slice(&payload);
    let mut sum = checksum(&[pseudo, &seg]);
    if proto == UDP && sum == 0 {
        sum = 0xffff;
    }
    seg[sum_at..sum_at + 2].copy_from_slice(&sum.to_be_bytes());
    seg
}

fn ipv4(proto: u8, payload_len: usize, seed: u8) -> Vec<u8> {
    let src = [10, 0, 0, 1];
    let dst = [192, 0, 2, seed];
    let seg_len = payload_len + if proto == TCP { 20 } else { 8 };
    let mut pseudo = Vec::new();
    if proto != ICMP {
        pseudo.extend_from_slice(&src);
        pseudo.extend_from_slice(&dst);
        pseudo.extend_from_slice(&[0, proto]);
        pseudo.extend_from_slice(&(seg_len as u16).to_be_bytes());
    }
    let seg = transport(proto, payload_len, &pseudo, seed);
    let mut h = vec![0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((20 + seg.len()) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&u16::from(seed).to_be_bytes());
    h[6] = 0x40; // DF
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst);
    let sum = checksum(&[&h]);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h.extend_from_slice(&seg);
    h
}

fn ipv6(proto: u8, payload_len: usize, seed: u8) -> Vec<u8> {
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    src[15] = 1;
    let mut dst = src;
    dst[15] = seed;
    let seg_len = payload_len + if proto == TCP { 20 } else { 8 };
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&(seg_len as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, proto]);
    let seg = transport(proto, payload_len, &pseudo, seed);
    let mut h = vec![0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(seg.len() as u16).to_be_bytes());
    h[6] = proto;
    h[7] = 64;
    h[8..24].copy_from_slice(&src);
    h[24..40].copy_from_slice(&dst);
    h.extend_from_slice(&seg);
    h
}

// ---------------------------------------------------------------------------
// The log.

/// One packet of the fixture and what tshark must say about it.
#[derive(Debug, Clone)]
struct Expected {
    ts: u64,
    ifindex: u32,
    ifname: &'static str,
    hook: Hook,
    family: Family,
    proto: u8,
    packet: Vec<u8>,
}

impl Expected {
    fn captured(&self) -> &[u8] {
        &self.packet[..self.packet.len().min(SNAPLEN as usize)]
    }

    /// tshark's frame.p2p_dir: 1 received, 0 sent, empty unknown.
    fn p2p_dir(&self) -> &'static str {
        match self.hook {
            Hook::PRE_ROUTING => "1",
            Hook::LOCAL_OUT => "0",
            _ => "",
        }
    }

    /// tshark's sll.pkttype: 0 PACKET_HOST, 4 PACKET_OUTGOING.
    fn sll_pkttype(&self) -> &'static str {
        match self.hook {
            Hook::LOCAL_OUT => "4",
            _ => "0",
        }
    }

    /// tshark's `frame.protocols` for the link, network and transport
    /// layers.
    fn protocols(&self, link: Link) -> String {
        let net = if self.family == Family::IPV4 {
            "ip"
        } else {
            "ipv6"
        };
        let tr = match self.proto {
            UDP => "udp",
            TCP => "tcp",
            ICMP => "icmp",
            ICMPV6 => "icmpv6",
            _ => unreachable!(),
        };
        match link {
            Link::Sll2 => format!("sll:ethertype:{net}:{tr}"),
            Link::Raw => format!("raw:{net}:{tr}"),
        }
    }
}

/// The link type of an export (`--linktype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Sll2,
    Raw,
}

impl Link {
    /// Bytes before each IP packet.
    fn header_len(self) -> u64 {
        match self {
            Link::Sll2 => SLL2,
            Link::Raw => 0,
        }
    }
}

/// 2024-04-05T19:34:38.000000001Z: a time whose last digit matters.
const T0: u64 = 1_712_345_678_000_000_001;

struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    log: PathBuf,
    packets: Vec<Expected>,
    lost: u64,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("run.log");
    let header = LogHeader {
        created_ns: T0 - 5_000_000_000,
        snaplen: SNAPLEN,
        source: "imp2 module unit 31".into(),
        hostname: "testhost".into(),
        kernel_release: "6.1.0-42-cloud-amd64".into(),
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
    let v4 = Family::IPV4;
    let v6 = Family::IPV6;
    let (pre, out) = (Hook::PRE_ROUTING, Hook::LOCAL_OUT);
    // (ifindex, name, hook, family, proto, payload bytes): several are
    // longer than the snaplen and get cut.
    #[rustfmt::skip]
    let plan: [(u32, &str, Hook, Family, u8, usize); 14] = [
        (2, "eth0", pre, v4, UDP, 100),  // 128 bytes: cut to 96
        (2, "eth0", out, v4, TCP, 0),    // bare ACK, 40 bytes
        (1, "lo",   out, v4, ICMP, 56),  // ping, 84 bytes
        (1, "lo",   pre, v4, ICMP, 56),
        (2, "eth0", pre, v6, UDP, 20),
        (2, "eth0", out, v6, TCP, 300),  // 360 bytes: cut
        (2, "eth0", pre, v6, ICMPV6, 8),
        // -- wg0 (ifindex 7) announced in an interface frame here --
        (7, "wg0",  pre, v4, UDP, 1200), // cut
        (7, "wg0",  out, v6, UDP, 1),    // odd length
        (9, "if9",  pre, v4, TCP, 7),    // never named: exported as if9
        (2, "eth0", out, v4, UDP, 0),    // empty payload, 28 bytes
        (9, "if9",  out, v6, ICMPV6, 40),
        (1, "lo",   pre, v6, TCP, 36),   // exactly 96 bytes: not cut
        (2, "eth0", pre, v4, TCP, 1400), // cut
    ];
    // Distinct, nanosecond-precise, with gaps that cross second boundaries
    // and land on .999999999 and .000000000.
    let mut ts = T0;
    let steps = [
        0u64,
        1,
        999_999_997,
        2,
        123_456_789,
        876_543_210,
        1,
        3_000_000_007,
        11,
        1_000_000_000,
        999_999_999,
        42,
        77_777_777,
        5,
    ];
    let mut packets = Vec::new();
    for (i, (&(ifindex, ifname, hook, family, proto, len), step)) in
        plan.iter().zip(steps).enumerate()
    {
        ts += step;
        let seed = 10 + i as u8;
        let packet = if family == v4 {
            ipv4(proto, len, seed)
        } else {
            ipv6(proto, len, seed)
        };
        packets.push(Expected {
            ts,
            ifindex,
            ifname,
            hook,
            family,
            proto,
            packet,
        });
    }

    let mut w = LogWriter::create(&log, &header).expect("create log");
    let mut losses = Losses::default();
    losses.kernel[1] = 5; // rcvbuf
    losses.gap_records = 3;
    losses.gap_batches = 1;
    for (i, p) in packets.iter().enumerate() {
        if i == 7 {
            w.add_interface(&Interface {
                ifindex: 7,
                name: "wg0".into(),
            })
            .expect("add_interface");
        }
        w.append(&PacketRecord {
            tstamp_ns: p.ts,
            ifindex: p.ifindex,
            orig_len: p.packet.len() as u32,
            hook: p.hook,
            family: p.family,
            protocol: p.proto,
            data: p.captured(),
        })
        .expect("append");
        if i % 4 == 3 {
            w.commit().expect("commit");
        }
        if i == 9 {
            w.add_losses(&losses).expect("add_losses");
        }
    }
    w.finish(packets.last().unwrap().ts + 1_000)
        .expect("finish");
    Fixture {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        log,
        packets,
        lost: losses.records(),
    }
}

// ---------------------------------------------------------------------------
// Running the tools.

fn tshark_path() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("tshark"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "tshark is not installed, and these tests need it to check the exported files. \
             Run the test setup script that installs the test dependencies (in CI it runs \
             `DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tshark`), \
             then run the tests again."
        )
    })
}

/// Runs `cmd`, which must succeed.
fn run(cmd: &mut Command) -> Output {
    imp2_testkit::harness::run_ok(cmd)
}

fn convert(log: &Path, out: &Path) -> Output {
    run(Command::new(CONVERT).arg(log).arg("-o").arg(out))
}

fn info_json(log: &Path) -> Value {
    let out = run(Command::new(INFO).arg("--json").arg(log));
    serde_json::from_slice(&out.stdout).expect("imp2-info --json prints JSON")
}

const FIELDS: [&str; 15] = [
    "frame.time_epoch",
    "frame.len",
    "frame.cap_len",
    "frame.interface_name",
    "frame.p2p_dir",
    "frame.packet_flags_direction",
    "frame.protocols",
    "ip.checksum.status",
    "_ws.malformed",
    "sll.ifindex",
    "sll.pkttype",
    "udp.checksum.status",
    "tcp.checksum.status",
    "icmp.checksum.status",
    "icmpv6.checksum.status",
];

fn tshark_cmd() -> Command {
    let mut cmd = Command::new(tshark_path());
    // Make tshark judge the checksums we wrote, and not read a user's
    // preferences.
    cmd.env(
        "WIRESHARK_CONFIG_DIR",
        std::env::temp_dir().join("imp2-no-wireshark-config"),
    )
    .args(["-o", "ip.check_checksum:TRUE"])
    .args(["-o", "udp.check_checksum:TRUE"])
    .args(["-o", "tcp.check_checksum:TRUE"])
    .args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    cmd
}

/// One line of tshark's field output.
#[derive(Debug, PartialEq, Eq)]
struct Frame {
    ns: u64,
    len: u64,
    cap_len: u64,
    ifname: String,
    p2p_dir: String,
    flags_dir: String,
    protocols: String,
    ip_checksum: String,
    malformed: String,
    sll_ifindex: String,
    sll_pkttype: String,
    /// Checksum status of the transport header (whichever is present).
    l4_checksum: String,
}

/// `1712345678.000000001` -> ns, refusing anything but nine fractional
/// digits (so a resolution mix-up cannot hide behind rounding).
fn parse_epoch(s: &str) -> u64 {
    let (sec, frac) = s.split_once('.').unwrap_or_else(|| panic!("time {s:?}"));
    assert_eq!(frac.len(), 9, "tshark must print ns, got {s:?}");
    sec.parse::<u64>().unwrap() * 1_000_000_000 + frac.parse::<u64>().unwrap()
}

fn parse_frames(stdout: &[u8]) -> Vec<Frame> {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), FIELDS.len(), "line {line:?}");
            Frame {
                ns: parse_epoch(f[0]),
                len: f[1].parse().unwrap(),
                cap_len: f[2].parse().unwrap(),
                ifname: f[3].into(),
                p2p_dir: f[4].into(),
                flags_dir: f[5].into(),
                protocols: f[6].into(),
                ip_checksum: f[7].into(),
                malformed: f[8].into(),
                sll_ifindex: f[9].into(),
                sll_pkttype: f[10].into(),
                l4_checksum: f[11..].concat(),
            }
        })
        .collect()
}

fn tshark_frames(file: &Path) -> Vec<Frame> {
    let out = run(tshark_cmd().arg("-r").arg(file));
    parse_frames(&out.stdout)
}

// ---------------------------------------------------------------------------
// Checks.

/// tshark and imp2-info must agree on totals, span and per-interface and
/// per-direction counts; tshark's lengths include `link`'s header.
fn check_against_info(frames: &[Frame], info: &Value, with_interfaces: bool, link: Link) {
    let u = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not a u64: {v}"));
    assert_eq!(frames.len() as u64, u(&info["records"]));
    let first = frames.iter().map(|f| f.ns).min().unwrap();
    let last = frames.iter().map(|f| f.ns).max().unwrap();
    assert_eq!(first, u(&info["first_ns"]), "first timestamp");
    assert_eq!(last, u(&info["last_ns"]), "last timestamp");
    let cap: u64 = frames.iter().map(|f| f.cap_len).sum();
    let orig: u64 = frames.iter().map(|f| f.len).sum();
    let headers = frames.len() as u64 * link.header_len();
    assert_eq!(cap, u(&info["captured_bytes"]) + headers);
    assert_eq!(orig, u(&info["original_bytes"]) + headers);
    if with_interfaces {
        let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
        for f in frames {
            *by_name.entry(f.ifname.clone()).or_default() += 1;
        }
        let info_by_name: BTreeMap<String, u64> = info["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| u(&i["records"]) > 0)
            .map(|i| (i["name"].as_str().unwrap().to_string(), u(&i["records"])))
            .collect();
        assert_eq!(by_name, info_by_name, "records per interface");
        let received = frames.iter().filter(|f| f.p2p_dir == "1").count() as u64;
        let sent = frames.iter().filter(|f| f.p2p_dir == "0").count() as u64;
        assert_eq!(received, u(&info["hooks"]["pre"]));
        assert_eq!(sent, u(&info["hooks"]["out"]));
    }
}

/// tshark must agree with the fixture on every packet.
fn check_against_fixture(frames: &[Frame], fx: &Fixture, pcapng: bool, link: Link) {
    assert_eq!(frames.len(), fx.packets.len());
    for (i, (f, p)) in frames.iter().zip(&fx.packets).enumerate() {
        let ctx = format!("packet {i}: {f:?} vs {p:?}");
        assert_eq!(f.ns, p.ts, "{ctx}");
        let header = link.header_len();
        assert_eq!(f.len, p.packet.len() as u64 + header, "{ctx}");
        assert_eq!(f.cap_len, p.captured().len() as u64 + header, "{ctx}");
        assert!(f.protocols.starts_with(&p.protocols(link)), "{ctx}");
        assert_eq!(f.malformed, "", "{ctx}");
        // SLL2 keeps ifindex and direction in pcap too.
        match link {
            Link::Sll2 => {
                assert_eq!(f.sll_ifindex, p.ifindex.to_string(), "{ctx}");
                assert_eq!(f.sll_pkttype, p.sll_pkttype(), "{ctx}");
            }
            Link::Raw => assert_eq!((&*f.sll_ifindex, &*f.sll_pkttype), ("", ""), "{ctx}"),
        }
        // A packet cut by the snaplen cannot have its transport checksum
        // verified; all others must be good.
        if p.captured().len() == p.packet.len() {
            assert_eq!(f.l4_checksum, "1", "{ctx}: transport checksum good");
        }
        if p.family == Family::IPV4 {
            // Wireshark's checksum status: 0 bad, 1 good, 2 unverified.
            assert_eq!(f.ip_checksum, "1", "{ctx}: IPv4 header checksum good");
        }
        if pcapng {
            assert_eq!(f.ifname, p.ifname, "{ctx}");
            assert_eq!(f.p2p_dir, p.p2p_dir(), "{ctx}");
            let flags = match p.hook {
                Hook::PRE_ROUTING => "0x00000001",
                Hook::LOCAL_OUT => "0x00000002",
                _ => "0x00000000",
            };
            assert_eq!(f.flags_dir, flags, "{ctx}");
        } else {
            assert_eq!(f.ifname, "", "{ctx}: pcap has no interface names");
            assert_eq!(f.p2p_dir, "", "{ctx}: pcap has no direction flags");
        }
    }
    // The fixture itself covers what it claims to.
    assert!(
        fx.packets
            .iter()
            .any(|p| p.captured().len() < p.packet.len())
    );
    assert!(
        fx.packets
            .iter()
            .any(|p| p.packet.len() == SNAPLEN as usize)
    );
}

#[test]
fn pcapng_agrees_with_tshark_and_info() {
    let fx = fixture();
    let out = fx.dir.join("run.pcapng");
    let r = convert(&fx.log, &out);
    assert!(
        r.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let frames = tshark_frames(&out);
    check_against_fixture(&frames, &fx, true, Link::Sll2);
    let info = info_json(&fx.log);
    check_against_info(&frames, &info, true, Link::Sll2);
    assert_eq!(info["losses"]["records_lost"], fx.lost);
    // Every interface got its name; the unnamed one the `if<N>` name.
    let names: Vec<&str> = frames.iter().map(|f| f.ifname.as_str()).collect();
    for n in ["lo", "eth0", "wg0", "if9"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
}

#[test]
fn pcap_agrees_with_tshark_and_info() {
    let fx = fixture();
    let out = fx.dir.join("run.pcap");
    let r = convert(&fx.log, &out);
    let stderr = String::from_utf8_lossy(&r.stderr);
    // The fixture lost records: the one thing classic pcap drops that a
    // user who asked for it may not know.
    assert_eq!(stderr.lines().count(), 1, "one note line: {stderr}");
    assert!(
        stderr.contains(&format!(
            "classic pcap has no place for the {} packets this recording lost",
            fx.lost
        )),
        "{stderr}"
    );
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..4], &0xA1B2_3C4Du32.to_le_bytes(), "ns magic");
    assert_eq!(&bytes[16..20], &(SNAPLEN + 20).to_le_bytes(), "snaplen");
    assert_eq!(&bytes[20..24], &276u32.to_le_bytes(), "LINKTYPE_LINUX_SLL2");
    let frames = tshark_frames(&out);
    check_against_fixture(&frames, &fx, false, Link::Sll2);
    check_against_info(&frames, &info_json(&fx.log), false, Link::Sll2);
}

/// `--linktype raw`: the IP packets alone, in pcapng and pcap.
#[test]
fn raw_link_type_agrees_with_tshark_and_info() {
    let fx = fixture();
    let info = info_json(&fx.log);
    for (name, pcapng) in [("raw.pcapng", true), ("raw.pcap", false)] {
        let out = fx.dir.join(name);
        let r = run(Command::new(CONVERT)
            .arg(&fx.log)
            .arg("-o")
            .arg(&out)
            .args(["--linktype", "raw"]));
        let stderr = String::from_utf8_lossy(&r.stderr);
        if pcapng {
            assert!(stderr.is_empty(), "{stderr}");
        } else {
            // Only the losses are noted: the raw link type was asked for.
            assert!(
                stderr.contains("classic pcap has no place for the")
                    && !stderr.contains("direction"),
                "{stderr}"
            );
            let bytes = std::fs::read(&out).unwrap();
            assert_eq!(&bytes[16..20], &SNAPLEN.to_le_bytes(), "snaplen");
            assert_eq!(&bytes[20..24], &101u32.to_le_bytes(), "LINKTYPE_RAW");
        }
        let frames = tshark_frames(&out);
        check_against_fixture(&frames, &fx, pcapng, Link::Raw);
        check_against_info(&frames, &info, pcapng, Link::Raw);
    }
}

#[test]
fn stdout_pipes_into_tshark() {
    let fx = fixture();
    let mut conv = Command::new(CONVERT)
        .arg(&fx.log)
        .args(["-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn imp2-convert");
    let pipe = conv.stdout.take().unwrap();
    let ts = tshark_cmd()
        .args(["-r", "-"])
        .stdin(pipe)
        .output()
        .expect("run tshark");
    let conv = conv.wait_with_output().unwrap();
    assert!(
        conv.status.success(),
        "{}",
        String::from_utf8_lossy(&conv.stderr)
    );
    assert!(
        ts.status.success(),
        "{}",
        String::from_utf8_lossy(&ts.stderr)
    );
    let frames = parse_frames(&ts.stdout);
    check_against_fixture(&frames, &fx, true, Link::Sll2);

    // Same bytes as writing a file.
    let file = fx.dir.join("file.pcapng");
    convert(&fx.log, &file);
    let piped = run(Command::new(CONVERT).arg(&fx.log).args(["-o", "-"])).stdout;
    assert_eq!(piped, std::fs::read(&file).unwrap());
}

/// The ISBs: tshark's own pcapng block dissector (the "MIME Files Format"
/// reader) must find the drop count, and a small independent block walker
/// checks every ISB counter and time.
#[test]
fn isb_carries_drops_and_times() {
    let fx = fixture();
    let out = fx.dir.join("run.pcapng");
    convert(&fx.log, &out);

    let ts = run(Command::new(tshark_path())
        .arg("-r")
        .arg(&out)
        .args(["-X", "read_format:MIME Files Format"])
        .args(["-T", "fields", "-E", "separator=/t"])
        .args(["-e", "pcapng.options.option.data.interface.dropped_by_os"])
        .args(["-e", "pcapng.options.option.data.interface.received"])
        .args([
            "-e",
            "pcapng.options.option.data.interface.delivered_to_user",
        ]));
    let text = String::from_utf8(ts.stdout).unwrap();
    let cols: Vec<Vec<u64>> = text
        .trim_end()
        .split('\t')
        .map(|c| c.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let (drops, recv, deliv) = (&cols[0], &cols[1], &cols[2]);
    // IDBs in order: lo, eth0 (header), wg0 (frame), if9 (unnamed), and
    // `any`, without packets, for the run's losses.
    assert!(fx.lost > 0);
    let per_if: Vec<u64> = ["lo", "eth0", "wg0", "if9", "any"]
        .iter()
        .map(|n| fx.packets.iter().filter(|p| p.ifname == *n).count() as u64)
        .collect();
    assert_eq!(per_if[4], 0);
    assert_eq!(drops, &[0, 0, 0, 0, fx.lost], "isb_osdrop per interface");
    assert_eq!(deliv, &per_if, "isb_usrdeliv per interface");
    let mut want_recv = per_if.clone();
    want_recv[4] += fx.lost;
    assert_eq!(recv, &want_recv, "isb_ifrecv per interface");

    // Independent walk over the blocks (little-endian, as written).
    let bytes = std::fs::read(&out).unwrap();
    let isbs = walk_isbs(&bytes);
    assert_eq!(isbs.len(), 5);
    let (any, any_opts) = &isbs[4];
    assert_eq!(*any, 4);
    assert_eq!(
        (any_opts[&7], any_opts[&8]),
        (fx.lost, 0),
        "any: osdrop, usrdeliv"
    );
    assert_eq!(any_opts[&2], T0 - 5_000_000_000, "any: isb_starttime");
    for (id, name) in ["lo", "eth0", "wg0", "if9"].iter().enumerate() {
        let (iface, opts) = &isbs[id];
        assert_eq!(*iface as usize, id);
        let on_if: Vec<u64> = fx
            .packets
            .iter()
            .filter(|p| p.ifname == *name)
            .map(|p| p.ts)
            .collect();
        assert_eq!(
            opts[&2],
            *on_if.iter().min().unwrap(),
            "{name} isb_starttime"
        );
        assert_eq!(opts[&3], *on_if.iter().max().unwrap(), "{name} isb_endtime");
        assert_eq!(opts[&7], 0, "{name} isb_osdrop");
        assert_eq!(opts[&8], on_if.len() as u64, "{name} isb_usrdeliv");
    }
}

/// `(interface id, {option code: u64 value})` of every ISB; times are
/// `(high << 32) | low` in if_tsresol units, i.e. ns here.
fn walk_isbs(b: &[u8]) -> Vec<(u32, BTreeMap<u16, u64>)> {
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap());
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let (ty, len) = (u32_at(at), u32_at(at + 4) as usize);
        assert!(
            len >= 12 && len % 4 == 0 && at + len <= b.len(),
            "block at {at}"
        );
        assert_eq!(u32_at(at + len - 4) as usize, len, "trailer at {at}");
        if ty == 5 {
            let iface = u32_at(at + 8);
            let mut opts = BTreeMap::new();
            let mut o = at + 20;
            while o < at + len - 4 {
                let (code, olen) = (u16_at(o), u16_at(o + 2) as usize);
                if code == 0 {
                    break;
                }
                if olen == 8 {
                    let v = if code == 2 || code == 3 {
                        (u64::from(u32_at(o + 4)) << 32) | u64::from(u32_at(o + 8))
                    } else {
                        u64::from_le_bytes(b[o + 4..o + 12].try_into().unwrap())
                    };
                    opts.insert(code, v);
                }
                o += 4 + olen.div_ceil(4) * 4;
            }
            out.push((iface, opts));
        }
        at += len;
    }
    out
}

#[test]
fn info_text_report_names_everything() {
    let fx = fixture();
    let out = run(Command::new(INFO).arg(&fx.log));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "imp2 module unit 31",
        "testhost",
        "6.1.0-42-cloud-amd64",
        "records     14",
        "2024-04-05T19:34:38.000000001Z (1712345678000000001 ns)",
        "eth0 (ifindex 2)",
        "if9 (ifindex 9)",
        "wg0 (ifindex 7)",
        "pre 8",
        "out 6",
        "ipv4 8",
        "ipv6 6",
        "8 records lost (kernel_rcvbuf 5, gap_records 3; gap_batches 1)",
        "closed cleanly",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
}

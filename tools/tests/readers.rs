//! The readers people use must read what `imp2-convert` writes: Debian's
//! own `tcpdump -r` (libpcap 1.10.3 on Debian 12), `tshark -r`, `capinfos`
//! and `mergecap`, for pcapng and classic pcap, through a file and through
//! a pipe.
//!
//! The log is what a real capture gives: several interfaces (two in the
//! header, one announced later, one never named), both directions, IPv4
//! and IPv6, packets cut by the snaplen, and losses (so the pcapng has its
//! `any` interface). tcpdump must print every packet: its time to the
//! nanosecond, its direction (`In`/`Out`, from the SLL2 header), its IP
//! version, and in hex (`-x`: the data after the link-layer header) exactly
//! the IP bytes of the log. With `--linktype raw` a log of one interface
//! reads with tcpdump too (libpcap 1.10.3 cannot read a RAW pcapng of
//! several interfaces: the reason SLL2 is the default).
//!
//! tcpdump is installed with apt-get when missing and the test runs as
//! root; otherwise the tests fail and say what to install. tshark,
//! capinfos and mergecap the same way (packages tshark, wireshark-common).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use imp2_format::log::{Interface, LogHeader, LogWriter, Losses};
use imp2_format::{Family, Hook};
use imp2_testkit::synth::{PacketSynth, SynthOptions, Transport};

const CONVERT: &str = env!("CARGO_BIN_EXE_imp2-convert");
/// Cuts the larger packets of the mix.
const SNAPLEN: usize = 200;
/// 2024-04-05T19:34:38.000000001Z: the last digit shows nanoseconds survive.
const T0: u64 = 1_712_345_678_000_000_001;
const PACKETS: usize = 400;

// ---------------------------------------------------------------------------
// The readers.

/// Serialises installs: the tests of this file run in parallel.
static INSTALL: Mutex<()> = Mutex::new(());

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The path of `name`, installing Debian `package` for it when it is
/// missing and this runs as root; panics, saying what to install, when it
/// cannot be had.
fn tool(name: &str, package: &str) -> PathBuf {
    let _lock = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = on_path(name) {
        return path;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        // Try the package index as it is first: an update needs the
        // network, and the index often already knows the package.
        let installed = apt(&["install", "-y", "-qq", "--no-install-recommends", package])
            || (apt(&["update", "-qq"])
                && apt(&["install", "-y", "-qq", "--no-install-recommends", package]));
        if let (true, Some(path)) = (installed, on_path(name)) {
            return path;
        }
    }
    panic!(
        "{name} is not installed{}, and these tests need it to check that it reads the \
         exported files. Install it (`DEBIAN_FRONTEND=noninteractive apt-get install -y \
         --no-install-recommends {package}`, as tools/test-all.sh does), then run the tests \
         again.",
        if root {
            " and `apt-get install` failed"
        } else {
            " (not root: no apt-get install)"
        }
    )
}

fn tcpdump() -> Command {
    Command::new(tool("tcpdump", "tcpdump"))
}

/// Runs `cmd`, which must succeed.
fn run(cmd: &mut Command) -> Output {
    imp2_testkit::harness::run_ok(cmd)
}

fn text(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

// ---------------------------------------------------------------------------
// The log.

/// A packet of the log, as the readers must show it.
#[derive(Debug)]
struct Packet {
    ts: u64,
    ifindex: u32,
    hook: Hook,
    family: Family,
    /// The captured bytes, from the IP header on.
    data: Vec<u8>,
}

struct Log {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    path: PathBuf,
    packets: Vec<Packet>,
}

/// A log of [`PACKETS`] synthetic packets on `ifindexes`, with `named`
/// interfaces named up front; `later` is announced by an interface frame a
/// third of the way in, and `losses` are recorded before the footer.
fn write_log(
    ifindexes: &[u32],
    named: &[(u32, &str)],
    later: Option<(u32, &str)>,
    losses: Option<Losses>,
) -> Log {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("run.log");
    let header = LogHeader {
        created_ns: T0 - 1_000_000_000,
        snaplen: SNAPLEN as u32,
        source: "imp2 module unit 31".into(),
        hostname: "testhost".into(),
        kernel_release: "6.1.0-42-cloud-amd64".into(),
        tsresol_digits: 9,
        interfaces: named
            .iter()
            .map(|&(ifindex, name)| Interface {
                ifindex,
                name: name.into(),
            })
            .collect(),
    };
    let mut synth = PacketSynth::new(
        31,
        SynthOptions {
            // Headers only, small, the bench's 92, and cut by the snaplen.
            sizes: vec![28, 61, 92, 150, 1400],
            families: vec![Family::IPV4, Family::IPV6],
            transports: Transport::ALL.to_vec(),
            hooks: vec![Hook::PRE_ROUTING, Hook::LOCAL_OUT],
            ifindexes: ifindexes.to_vec(),
            flow_len: 3,
        },
    )
    .expect("synth options");
    let mut w = LogWriter::create(&path, &header).expect("create log");
    let mut buf = vec![0u8; SNAPLEN];
    let mut packets = Vec::new();
    for i in 0..PACKETS {
        if i == PACKETS / 3
            && let Some((ifindex, name)) = later
        {
            w.add_interface(&Interface {
                ifindex,
                name: name.into(),
            })
            .expect("add_interface");
        }
        // Steps that cross second boundaries.
        let ts = T0 + i as u64 * 7_777_777;
        let r = synth.next_record(&mut buf, SNAPLEN, ts);
        w.append(&r).expect("append");
        packets.push(Packet {
            ts,
            ifindex: r.ifindex,
            hook: r.hook,
            family: r.family,
            data: r.data.to_vec(),
        });
        if i % 50 == 49 {
            w.commit().expect("commit");
        }
    }
    if let Some(losses) = losses {
        w.add_losses(&losses).expect("add_losses");
    }
    w.finish(T0 + PACKETS as u64 * 7_777_777).expect("finish");
    Log {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        path,
        packets,
    }
}

/// The log of a real capture: lo and eth0 named in the header, wg0 named
/// later, ifindex 9 never named, and losses.
fn capture_log() -> Log {
    let mut losses = Losses::default();
    losses.kernel[1] = 5;
    losses.gap_records = 3;
    losses.gap_batches = 1;
    let log = write_log(
        &[1, 2, 7, 9],
        &[(1, "lo"), (2, "eth0")],
        Some((7, "wg0")),
        Some(losses),
    );
    // The log covers what it claims to.
    let p = &log.packets;
    for ifindex in [1, 2, 7, 9] {
        assert!(p.iter().any(|p| p.ifindex == ifindex), "ifindex {ifindex}");
    }
    for hook in [Hook::PRE_ROUTING, Hook::LOCAL_OUT] {
        assert!(p.iter().any(|p| p.hook == hook), "{hook}");
    }
    for family in [Family::IPV4, Family::IPV6] {
        assert!(p.iter().any(|p| p.family == family), "{family}");
    }
    assert!(p.iter().any(|p| p.data.len() == SNAPLEN), "some cut");
    log
}

fn convert(log: &Log, name: &str, args: &[&str]) -> PathBuf {
    let out = log.dir.join(name);
    run(Command::new(CONVERT)
        .arg(&log.path)
        .arg("-o")
        .arg(&out)
        .args(args));
    out
}

// ---------------------------------------------------------------------------
// What tcpdump prints.

/// One packet as `tcpdump -tt --time-stamp-precision=nano -nn -x` prints
/// it.
#[derive(Debug)]
struct Dumped {
    /// The first line.
    line: String,
    /// The bytes after the link-layer header, from the hex lines.
    data: Vec<u8>,
}

impl Dumped {
    fn word(&self, i: usize) -> &str {
        self.line.split_whitespace().nth(i).unwrap_or("")
    }
}

/// tcpdump's packets from `args` (`-r FILE` or `-r -` with stdin set).
fn tcpdump_packets(cmd: &mut Command) -> Vec<Dumped> {
    let out = run(cmd
        .args(["-tt", "--time-stamp-precision=nano", "-nn", "-x"])
        .env("TZ", "UTC"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("pcap_loop") && !stderr.contains("error"),
        "tcpdump: {stderr}"
    );
    let mut packets: Vec<Dumped> = Vec::new();
    for line in text(&out).lines() {
        if let Some(hex) = line.strip_prefix("\t0x") {
            let (offset, words) = hex.split_once(':').expect("hex line");
            let last = packets.last_mut().expect("hex before a packet line");
            assert_eq!(
                usize::from_str_radix(offset, 16).unwrap(),
                last.data.len(),
                "{line}"
            );
            for word in words.split_whitespace() {
                for pair in word.as_bytes().chunks(2) {
                    let s = std::str::from_utf8(pair).unwrap();
                    last.data.push(u8::from_str_radix(s, 16).expect(line));
                }
            }
        } else if starts_with_time(line) {
            packets.push(Dumped {
                line: line.to_string(),
                data: Vec::new(),
            });
        } else {
            // What a dissector adds on lines of its own: random ports hit
            // well-known ones (4789 VXLAN, say) and the payload is decoded.
            let last = packets.last_mut().expect("a packet line first");
            assert!(last.data.is_empty(), "text after the hex: {line:?}");
        }
    }
    packets
}

/// Whether `line` starts with a time as `-tt --time-stamp-precision=nano`
/// prints it (`1712345678.000000001 `): a packet's first line.
fn starts_with_time(line: &str) -> bool {
    let word = line.split(' ').next().unwrap_or("");
    word.split_once('.').is_some_and(|(sec, ns)| {
        !sec.is_empty()
            && ns.len() == 9
            && sec.bytes().chain(ns.bytes()).all(|b| b.is_ascii_digit())
    })
}

/// tcpdump must have printed every packet of `log`, in order, with its
/// time and IP bytes; with `sll2`, its direction.
fn check_tcpdump(dumped: &[Dumped], log: &Log, sll2: bool) {
    assert_eq!(dumped.len(), log.packets.len(), "packets tcpdump read");
    for (i, (d, p)) in dumped.iter().zip(&log.packets).enumerate() {
        let ctx = format!("packet {i}: {:?}", d.line);
        let ts = format!("{}.{:09}", p.ts / 1_000_000_000, p.ts % 1_000_000_000);
        assert_eq!(d.word(0), ts, "{ctx}");
        // SLL2: time, interface (tcpdump names the ifindex as the reading
        // host does, or `?`), direction, protocol. RAW: time, protocol.
        let net = if sll2 {
            let dir = match p.hook {
                Hook::PRE_ROUTING => "In",
                Hook::LOCAL_OUT => "Out",
                other => panic!("{other}"),
            };
            assert_eq!(d.word(2), dir, "{ctx}");
            d.word(3)
        } else {
            d.word(1)
        };
        let want = if p.family == Family::IPV4 {
            "IP"
        } else {
            "IP6"
        };
        assert_eq!(net, want, "{ctx}");
        // When a dissector runs out of data (`[|ntp]`: random ports hit
        // well-known ones, and the payload is cut or missing), tcpdump
        // 4.99.3 prints the link-layer header in hex too: then it must be
        // the SLL2 header of this packet.
        let mut data = &d.data[..];
        if sll2 && d.line.contains("[|") && data.len() == p.data.len() + 20 {
            let (link, ip) = data.split_at(20);
            let mut want = Vec::new();
            want.extend_from_slice(if p.family == Family::IPV4 {
                &[0x08, 0x00]
            } else {
                &[0x86, 0xdd]
            });
            want.extend_from_slice(&[0, 0]);
            want.extend_from_slice(&p.ifindex.to_be_bytes());
            want.extend_from_slice(&[0xff, 0xfe]); // ARPHRD_NONE
            want.push(if p.hook == Hook::LOCAL_OUT { 4 } else { 0 });
            want.extend_from_slice(&[0; 9]);
            assert_eq!(link, want, "{ctx}: SLL2 header");
            data = ip;
        }
        assert!(
            data == p.data,
            "{ctx}: IP bytes differ: {} bytes read, {} written; first difference at {:?}",
            data.len(),
            p.data.len(),
            data.iter().zip(&p.data).position(|(a, b)| a != b)
        );
    }
}

// ---------------------------------------------------------------------------
// The other readers.

/// `capinfos -c` of `file`: the packet count it reads.
fn capinfos_packets(file: &Path) -> usize {
    let out = run(Command::new(tool("capinfos", "wireshark-common"))
        .args(["-c", "-M"])
        .arg(file));
    let text = text(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("Number of packets"))
        .unwrap_or_else(|| panic!("no packet count in {text}"));
    line.split(':').nth(1).unwrap().trim().parse().unwrap()
}

/// tshark's (ifindex, packet type, network layer) of every packet of the
/// SLL2 `file`.
fn tshark_sll2(file: &Path) -> Vec<(u32, u8, String)> {
    let out = run(Command::new(tool("tshark", "tshark"))
        .env(
            "WIRESHARK_CONFIG_DIR",
            std::env::temp_dir().join("imp2-no-wireshark-config"),
        )
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=/t"])
        .args([
            "-e",
            "sll.ifindex",
            "-e",
            "sll.pkttype",
            "-e",
            "frame.protocols",
        ]));
    text(&out)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "{l}");
            // The payloads are random: what follows the transport layer
            // (DNS on port 53, say) may well be malformed. The link and
            // network layers are what this checks.
            let net = f[2].split(':').take(3).collect::<Vec<_>>().join(":");
            (f[0].parse().expect(l), f[1].parse().expect(l), net)
        })
        .collect()
}

fn check_tshark(file: &Path, log: &Log) {
    let want: Vec<(u32, u8, String)> = log
        .packets
        .iter()
        .map(|p| {
            let packet_type = if p.hook == Hook::LOCAL_OUT { 4 } else { 0 };
            let net = if p.family == Family::IPV4 {
                "ip"
            } else {
                "ipv6"
            };
            (p.ifindex, packet_type, format!("sll:ethertype:{net}"))
        })
        .collect();
    assert_eq!(tshark_sll2(file), want, "{}", file.display());
}

/// mergecap merges `a` and `b`; capinfos and tcpdump read every packet of
/// both.
fn check_merge(a: &Path, b: &Path, packets: usize) {
    let merged = a.with_extension("merged.pcapng");
    run(Command::new(tool("mergecap", "wireshark-common"))
        .arg("-w")
        .arg(&merged)
        .arg(a)
        .arg(b));
    assert_eq!(capinfos_packets(&merged), packets, "{}", merged.display());
    let dumped = tcpdump_packets(tcpdump().arg("-r").arg(&merged));
    assert_eq!(dumped.len(), packets, "tcpdump of {}", merged.display());
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn tcpdump_tshark_capinfos_mergecap_read_sll2_pcapng() {
    let log = capture_log();
    let file = convert(&log, "run.pcapng", &[]);
    // Several interfaces, `any` among them: the case libpcap 1.10.3 failed
    // on with LINKTYPE_RAW. (ifindex 7 has packets before its name comes:
    // if7 first, then wg0.)
    let info = text(&run(Command::new(tool("capinfos", "wireshark-common"))
        .arg("-M")
        .arg(&file)));
    let mut names: Vec<&str> = info
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Name = "))
        .collect();
    names.sort();
    assert_eq!(names, ["any", "eth0", "if7", "if9", "lo", "wg0"], "{info}");
    let sll2 = info
        .lines()
        .filter(|l| l.contains("Encapsulation = Linux cooked-mode capture v2"))
        .count();
    assert_eq!(sll2, names.len(), "every interface SLL2:\n{info}");

    check_tcpdump(&tcpdump_packets(tcpdump().arg("-r").arg(&file)), &log, true);
    check_tshark(&file, &log);
    assert_eq!(capinfos_packets(&file), PACKETS);
    check_merge(&file, &file, 2 * PACKETS);
}

#[test]
fn tcpdump_tshark_capinfos_mergecap_read_sll2_pcap() {
    let log = capture_log();
    let file = convert(&log, "run.pcap", &[]);
    check_tcpdump(&tcpdump_packets(tcpdump().arg("-r").arg(&file)), &log, true);
    check_tshark(&file, &log);
    assert_eq!(capinfos_packets(&file), PACKETS);
    check_merge(&file, &file, 2 * PACKETS);
    // pcap and pcapng of the same log merge too.
    let pcapng = convert(&log, "run.pcapng", &[]);
    check_merge(&file, &pcapng, 2 * PACKETS);
}

/// `imp2-convert LOG -o - | tcpdump -r -`, the other form of the issue.
#[test]
fn tcpdump_reads_from_a_pipe() {
    let log = capture_log();
    for format in ["pcapng", "pcap"] {
        let mut conv = Command::new(CONVERT)
            .arg(&log.path)
            .args(["-o", "-", "--format", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn imp2-convert");
        let pipe = conv.stdout.take().unwrap();
        let dumped = tcpdump_packets(tcpdump().args(["-r", "-"]).stdin(pipe));
        let conv = conv.wait_with_output().unwrap();
        assert!(
            conv.status.success(),
            "{}",
            String::from_utf8_lossy(&conv.stderr)
        );
        check_tcpdump(&dumped, &log, true);
    }
}

/// `--linktype raw` of a log with one interface (and nothing for `any`):
/// tcpdump reads it, pcapng and pcap, and shows the same IP bytes.
#[test]
fn tcpdump_reads_raw_of_one_interface() {
    let log = write_log(&[2], &[(2, "eth0")], None, None);
    for name in ["raw.pcapng", "raw.pcap"] {
        let file = convert(&log, name, &["--linktype", "raw"]);
        let info = text(&run(Command::new(tool("capinfos", "wireshark-common"))
            .arg("-M")
            .arg(&file)));
        assert!(info.contains("Raw IP"), "{info}");
        if name.ends_with("pcapng") {
            assert!(info.contains("Number of interfaces in file: 1"), "{info}");
        }
        check_tcpdump(
            &tcpdump_packets(tcpdump().arg("-r").arg(&file)),
            &log,
            false,
        );
        assert_eq!(capinfos_packets(&file), PACKETS);
    }
}

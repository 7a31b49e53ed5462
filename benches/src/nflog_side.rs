//! The NFLOG side-by-side benchmark (issue 6): on the same veth flood in
//! the same run, `imp2-record --source nflog:G` against `tcpdump -w`,
//! `dumpcap -w` and ulogd2 (NFLOG input, PCAP output), with a bare C
//! NFLOG reader writing pcap (benches/c/nflog-pcap.c) as the reference the
//! issue's CPU goal was set from.
//!
//! Two network namespaces joined by a veth pair are created for the run
//! (names carry the pid; a guard removes them on every exit path).
//! imp2-flood in namespace A sends 64-byte UDP datagrams to namespace B,
//! whose input chain holds one rule, `udp dport 9999 counter log group G
//! drop`, installed once and kept for every run (the no-capture baseline
//! included), so that only the capturing process differs between runs.
//!
//! Per round each capturer runs once, in an order rotated every round,
//! each between two no-capture runs: the senders' rate kept is the capture
//! run's packets/s over the mean of those two (paired, because the
//! machine's load drifts). The capturer's CPU is user + sys from `wait4`'s
//! rusage (all its threads, and any children it reaped), less its fixed
//! start-up cost measured by idle runs (start, ready, hold, stop, no
//! traffic). Packets are counted in the output file in-process.
//!
//! Every loop is bounded in count and time and every child is killed on
//! timeout. Needs root, `ip` and `nft`; a capturer whose tool is missing
//! gets a "not measured" row with the reason.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use imp2_format::log::{LogEvent, LogReader};
use serde_json::Value;

use crate::{M, bin_dir};
use imp2_testkit::VethPair;
use imp2_testkit::proc::Proc;

/// UDP port the flood goes to; the rule matches it.
const PORT: u16 = 9999;
/// Third octet of the run's addresses (inside its own namespaces, so no
/// clash with the tests; imp2-flood only sends to 10.199.0.0/16).
const NET: &str = "10.199.250";
/// UDP payload per datagram: 92-byte IPv4 packets.
const PAYLOAD: usize = 64;
/// The NFLOG group of the rule. Groups are per network namespace, and a
/// group released by one reader binds again at once (checked while writing
/// this), so one group, one ruleset for every run.
const GROUP: u16 = 7600;
/// Held after the flood ends before the capturer is stopped: tcpdump's
/// TPACKET_V3 blocks retire after libpcap's 1000 ms timeout and the kernel
/// flushes a partial NFLOG buffer after its default 1 s (ulogd2 sets no
/// flush timeout), so a shorter wait would count queued packets as lost.
const SETTLE: Duration = Duration::from_millis(1200);
/// Bound on starting, stopping and helper commands.
const STEP: Duration = Duration::from_secs(30);

/// The capturing programs compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capturer {
    /// `imp2-record --source nflog:G`.
    Imp2,
    /// `imp2-record --source nflog:G --direct`.
    Imp2Direct,
    /// `tcpdump -w` on the veth (AF_PACKET, TPACKET_V3 ring).
    Tcpdump,
    /// `dumpcap -w` on the veth (pcapng).
    Dumpcap,
    /// ulogd2: NFLOG input, BASE, PCAP output.
    Ulogd,
    /// benches/c/nflog-pcap.c, compiled for the run: the bare NFLOG
    /// reader (128 KiB buffers, 1000-packet threshold) writing pcap that
    /// issue 6 measured at 153-195 ns per packet and set the goal from.
    /// The host's speed under the flood drifts by more than that from day
    /// to day; this row measures the reference in the same run.
    CReader,
}

impl Capturer {
    /// All of them, in the order of the table.
    pub const ALL: [Capturer; 6] = [
        Capturer::Imp2,
        Capturer::Imp2Direct,
        Capturer::CReader,
        Capturer::Tcpdump,
        Capturer::Dumpcap,
        Capturer::Ulogd,
    ];

    /// Name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Capturer::Imp2 => "imp2-record --source nflog",
            Capturer::Imp2Direct => "imp2-record --source nflog --direct",
            Capturer::Tcpdump => "tcpdump -w",
            Capturer::Dumpcap => "dumpcap -w",
            Capturer::Ulogd => "ulogd2 (NFLOG in, PCAP out)",
            Capturer::CReader => "bare C NFLOG reader writing pcap (reference)",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Capturer::Imp2 => "imp2",
            Capturer::Imp2Direct => "imp2-direct",
            Capturer::Tcpdump => "tcpdump",
            Capturer::Dumpcap => "dumpcap",
            Capturer::Ulogd => "ulogd",
            Capturer::CReader => "c-reader",
        }
    }

    fn output_ext(self) -> &'static str {
        match self {
            Capturer::Imp2 | Capturer::Imp2Direct => "log",
            Capturer::Tcpdump | Capturer::Ulogd | Capturer::CReader => "pcap",
            Capturer::Dumpcap => "pcapng",
        }
    }

    /// The signal that stops it cleanly (ulogd2 treats SIGINT and SIGTERM
    /// alike; SIGTERM is what its service uses).
    fn stop_signal(self) -> i32 {
        match self {
            Capturer::Ulogd => libc::SIGTERM,
            _ => libc::SIGINT,
        }
    }

    /// Readiness is seen on stderr for the AF_PACKET tools and in the
    /// namespace's NFLOG instance table for the NFLOG readers.
    fn binds_nflog(self) -> bool {
        matches!(
            self,
            Capturer::Imp2 | Capturer::Imp2Direct | Capturer::Ulogd | Capturer::CReader
        )
    }
}

/// Results of one capturer over all rounds.
#[derive(Clone, Debug)]
pub struct CapStats {
    /// Which program.
    pub capturer: Capturer,
    /// Its version line, or why it was not measured.
    pub available: Result<String, String>,
    /// The command as run (placeholders for the per-run paths).
    pub command: String,
    /// Flood packets in the output file / packets sent.
    pub ratio: M,
    /// (CPU - start-up CPU) / captured packets, ns.
    pub ns: M,
    /// Output file bytes / packets in it.
    pub bpp: M,
    /// Senders' packets/s while capturing / paired baseline's.
    pub kept: M,
    /// Senders' packets/s while capturing.
    pub pps: M,
    /// CPU of the idle runs (start-up and stop), seconds.
    pub idle_cpu: M,
    /// CPU of the traffic runs, seconds (start-up not yet subtracted),
    /// with the packets captured in that run.
    pub raw: Vec<(f64, u64)>,
    /// Packets sent and captured, summed over the rounds.
    pub sent: u64,
    /// Flood packets found in the output files, summed.
    pub captured: u64,
    /// What the tool itself reported as lost, one entry per run.
    pub self_reported: Vec<String>,
    /// imp2-record: records lost by its own accounting, summed.
    pub imp2_lost: u64,
    /// Runs that failed, with the reason.
    pub failures: Vec<String>,
}

impl CapStats {
    /// Every run captured every packet sent, by the file and by the
    /// recorder's own loss count, and none failed.
    fn all_exact(&self) -> bool {
        self.ratio.v.iter().all(|&r| r == 1.0) && self.imp2_lost == 0 && self.failures.is_empty()
    }

    fn new(capturer: Capturer, available: Result<String, String>, command: String) -> CapStats {
        CapStats {
            capturer,
            available,
            command,
            ratio: M::default(),
            ns: M::default(),
            bpp: M::default(),
            kept: M::default(),
            pps: M::default(),
            idle_cpu: M::default(),
            raw: Vec::new(),
            sent: 0,
            captured: 0,
            self_reported: Vec::new(),
            imp2_lost: 0,
            failures: Vec::new(),
        }
    }
}

/// Everything the benchmark measured.
#[derive(Clone, Debug)]
pub struct NflogSide {
    /// Quick (CI) mode.
    pub quick: bool,
    /// Rounds planned.
    pub rounds: usize,
    /// Rounds completed.
    pub rounds_done: usize,
    /// Packets per flood.
    pub packets: u64,
    /// Why nothing at all was measured (not root, no `ip`/`nft`, ...).
    pub setup_error: Option<String>,
    /// Senders' packets/s with no capture (every baseline run).
    pub baseline_pps: M,
    /// One entry per capturer, in [`Capturer::ALL`] order.
    pub caps: Vec<CapStats>,
    /// Other observations (arrivals short of sent, skipped rounds).
    pub notes: Vec<String>,
    /// `/proc/loadavg` at the start and at the end.
    pub load: (String, String),
    /// Wall time of the whole run.
    pub took: Duration,
    /// Scratch directory the outputs were written to.
    pub dir: PathBuf,
    /// imp2-record's hot path without sockets, once a round.
    pub hot: crate::nflog_breakdown::HotPath,
}

// ---------------------------------------------------------------------------
// Helpers: commands, processes, namespaces

/// First line of `program --version` (stdout or stderr), if it runs.
fn version(program: &str, arg: &str) -> Result<String, String> {
    let out = Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map(|c| crate::wait(c, Duration::from_secs(10)))
        .map_err(|e| format!("`{program}` not found ({e})"))?;
    let text = format!("{}\n{}", out.stdout, out.stderr);
    Ok(text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(program)
        .to_string())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The flood's namespaces (the harness's veth pair, IPv6 off: no
/// neighbour discovery or MLD packets in the AF_PACKET captures, only the
/// flood and one ARP exchange) with the NFLOG ruleset loaded in B.
fn netns(dir: &Path) -> Result<VethPair, String> {
    let ns = VethPair::new("imp2nf", NET, None)?;
    ns.nft(&ruleset(), dir)?;
    Ok(ns)
}

/// Packets the flood rule has counted so far (arrived at B's input).
fn arrived(ns: &VethPair) -> Result<u64, String> {
    ns.counters()?
        .get(RULE)
        .copied()
        .ok_or_else(|| "nft: the rule's counter is missing".to_string())
}

/// Comment of the flood's rule (names its counter).
const RULE: &str = "flood";

fn ruleset() -> String {
    format!(
        "table inet imp2bench {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    \
         udp dport {PORT} counter log group {GROUP} drop comment \"{RULE}\"\n  }}\n}}\n"
    )
}

// ---------------------------------------------------------------------------
// Counting packets in the outputs

/// Packets in a capture file: all of them, and those of the flood (IPv4
/// UDP to `PORT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    /// Every packet in the file.
    pub total: u64,
    /// The flood's packets.
    pub flood: u64,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Is this captured frame (of `linktype`) one of the flood's datagrams?
fn is_flood(linktype: u32, frame: &[u8]) -> bool {
    let ip = match linktype {
        // Ethernet, with one optional VLAN tag.
        1 => {
            let (et, off) = match be16(frame, 12) {
                Some(0x8100) => (be16(frame, 16), 18),
                et => (et, 14),
            };
            if et != Some(0x0800) {
                return false;
            }
            &frame[off.min(frame.len())..]
        }
        // Raw IP (DLT_RAW in its several numberings) and LINKTYPE_IPV4.
        12 | 14 | 101 | 228 => frame,
        // Linux cooked capture v1 and v2.
        113 if be16(frame, 14) == Some(0x0800) => &frame[16.min(frame.len())..],
        276 if be16(frame, 0) == Some(0x0800) => &frame[20.min(frame.len())..],
        _ => return false,
    };
    let Some(&v_ihl) = ip.first() else {
        return false;
    };
    let ihl = usize::from(v_ihl & 0x0f) * 4;
    v_ihl >> 4 == 4 && ip.get(9) == Some(&17) && be16(ip, ihl + 2) == Some(PORT)
}

/// Counts a pcap or pcapng file by walking its packets (a record cut
/// short at the end, by a capturer stopped mid-write, is not counted).
pub fn count_capture(path: &Path) -> Result<Count, String> {
    let mut c = Count::default();
    imp2_testkit::capture::for_each_packet(path, |linktype, frame| {
        c.total += 1;
        c.flood += u64::from(is_flood(linktype, frame));
    })?;
    Ok(c)
}

/// Counts an imp2 log through imp2-format's reader: all records and the
/// UDP ones (the rule only logs the flood).
pub fn count_log(path: &Path) -> Result<Count, String> {
    let reader = LogReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut c = Count::default();
    for event in reader.events() {
        match event {
            Ok(LogEvent::Record(r)) => {
                c.total += 1;
                c.flood += u64::from(r.protocol == 17);
            }
            Ok(_) => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok(c)
}

// ---------------------------------------------------------------------------
// The runs

/// Sizes of the run.
#[derive(Clone, Copy, Debug)]
struct Plan {
    rounds: usize,
    packets: u64,
    /// Stop starting rounds after this long (every round is itself bounded).
    budget: Duration,
}

/// The binaries and configuration a run needs.
#[derive(Debug)]
struct Env {
    flood: PathBuf,
    record: PathBuf,
    /// Directory of ulogd2's plugins.
    ulogd_plugins: Option<PathBuf>,
    /// The compiled reference reader, or why it could not be built.
    c_reader: Result<PathBuf, String>,
}

/// What the sender reported.
#[derive(Debug)]
struct Flood {
    sent: u64,
    pps: f64,
}

fn flood(ns: &VethPair, env: &Env, n: u64) -> Result<Flood, String> {
    let args: Vec<String> = [
        "--udp".into(),
        format!("{NET}.2:{PORT}"),
        "-n".into(),
        n.to_string(),
        "--size".into(),
        PAYLOAD.to_string(),
        "--timeout".into(),
        "60".into(),
    ]
    .into();
    let mut cmd = ns.exec(&ns.a, &env.flood, &args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start imp2-flood: {e}"))?;
    let out = crate::wait(child, Duration::from_secs(90));
    if !out.ok {
        return Err(format!("imp2-flood failed: {}", out.stderr.trim()));
    }
    let v: Value = serde_json::from_str(out.stdout.trim())
        .map_err(|e| format!("imp2-flood JSON: {e}: {}", out.stdout.trim()))?;
    let sent = v["udp_sent"].as_u64().unwrap_or(0);
    if v["timed_out"] == true {
        return Err(format!("imp2-flood timed out after {sent} of {n} packets"));
    }
    Ok(Flood {
        sent,
        pps: v["udp_pps"].as_f64().unwrap_or(f64::NAN),
    })
}

/// Finds ulogd2's plugin directory (Debian: /usr/lib/<triplet>/ulogd).
fn ulogd_plugins() -> Option<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/usr/lib/ulogd"),
        PathBuf::from("/usr/local/lib/ulogd"),
        PathBuf::from("/usr/lib64/ulogd"),
    ];
    if let Ok(rd) = std::fs::read_dir("/usr/lib") {
        dirs.extend(rd.flatten().map(|e| e.path().join("ulogd")));
    }
    dirs.into_iter().find(|d| {
        [
            "ulogd_inppkt_NFLOG.so",
            "ulogd_raw2packet_BASE.so",
            "ulogd_output_PCAP.so",
        ]
        .iter()
        .all(|p| d.join(p).exists())
    })
}

/// ulogd.conf as Debian ships it for the NFLOG -> PCAP stack (the
/// commented `stack=log2:NFLOG,base1:BASE,pcap1:PCAP` line, `[log2]` with
/// only its group, `[pcap1]` with `sync=1`), with our group, our file and a
/// log file in the scratch directory instead of syslog. Nothing is tuned:
/// no netlink buffer sizes, no queue threshold or timeout.
fn ulogd_conf(plugins: &Path, out: &Path, logfile: &Path) -> String {
    let p = plugins.display();
    format!(
        "[global]\nlogfile=\"{}\"\nloglevel=3\n\
         plugin=\"{p}/ulogd_inppkt_NFLOG.so\"\n\
         plugin=\"{p}/ulogd_raw2packet_BASE.so\"\n\
         plugin=\"{p}/ulogd_output_PCAP.so\"\n\
         stack=log2:NFLOG,base1:BASE,pcap1:PCAP\n\n\
         [log2]\ngroup={GROUP}\n\n\
         [pcap1]\nfile=\"{}\"\nsync=1\n",
        logfile.display(),
        out.display()
    )
}

/// ulogd2's own log for the run writing `out`.
fn ulogd_log(out: &Path) -> PathBuf {
    out.with_extension("ulogd.log")
}

/// The program and arguments of a capturer writing to `out`.
fn command(cap: Capturer, env: &Env, out: &Path, dir: &Path) -> (PathBuf, Vec<String>) {
    let out_s = out.to_string_lossy().into_owned();
    match cap {
        Capturer::Imp2 | Capturer::Imp2Direct => {
            let mut args: Vec<String> = vec![
                "--source".into(),
                format!("nflog:{GROUP}"),
                "-o".into(),
                out_s,
                "-q".into(),
                "--json".into(),
                "--rcvbuf".into(),
                "64M".into(),
            ];
            if cap == Capturer::Imp2Direct {
                args.push("--direct".into());
            }
            (env.record.clone(), args)
        }
        Capturer::Tcpdump => (
            "tcpdump".into(),
            vec![
                "-n".into(),
                "-i".into(),
                VethPair::DEV_B.to_string(),
                "-B".into(),
                "262144".into(),
                "-s".into(),
                "262144".into(),
                "-Z".into(),
                "root".into(),
                "-w".into(),
                out_s,
            ],
        ),
        Capturer::Dumpcap => (
            "dumpcap".into(),
            vec![
                "-q".into(),
                "-i".into(),
                VethPair::DEV_B.to_string(),
                "-B".into(),
                "256".into(),
                "-s".into(),
                "262144".into(),
                "-w".into(),
                out_s,
            ],
        ),
        Capturer::CReader => (
            env.c_reader.clone().unwrap_or_default(),
            vec![GROUP.to_string(), out_s],
        ),
        Capturer::Ulogd => {
            let conf = dir.join("ulogd.conf");
            let plugins = env.ulogd_plugins.clone().unwrap_or_default();
            let text = ulogd_conf(&plugins, out, &ulogd_log(out));
            // An unwritable scratch directory shows up when ulogd fails to
            // start (it reports the missing config file).
            let _ = std::fs::write(&conf, text);
            (
                "ulogd".into(),
                vec!["-c".into(), conf.to_string_lossy().into_owned()],
            )
        }
    }
}

/// The command line for the Method paragraph.
fn command_text(cap: Capturer) -> String {
    match cap {
        Capturer::Imp2 => format!(
            "`imp2-record --source nflog:{GROUP} -o OUT.log -q --json --rcvbuf 64M` (defaults: \
             `--nflog-bufsize 128K --nflog-qthresh 4096 --nflog-flush-ms 100`, snaplen 65535, \
             io_uring receive)"
        ),
        Capturer::Imp2Direct => "the same with `--direct` (the log written a MiB at a time \
             with O_DIRECT by a writer thread, whose CPU counts too)"
            .into(),
        Capturer::Tcpdump => "`tcpdump -n -i VETH -B 262144 -s 262144 -Z root -w OUT.pcap` \
             (256 MiB TPACKET_V3 ring, default snaplen, no filter, pcap; `-Z root` only keeps \
             it from switching to the tcpdump user, which could not write the scratch directory)"
            .into(),
        Capturer::Dumpcap => "`dumpcap -q -i VETH -B 256 -s 262144 -w OUT.pcapng` (256 MiB \
             buffer like tcpdump's, default snaplen, no filter, pcapng)"
            .into(),
        Capturer::Ulogd => format!(
            "`ulogd -c ulogd.conf` in the foreground (no `-d`, so no fork), the stock Debian \
             configuration of the NFLOG-to-PCAP stack: `stack=log2:NFLOG,base1:BASE,pcap1:PCAP`, \
             `[log2] group={GROUP}` and nothing else (no `netlink_socket_buffer_size`, no \
             `netlink_qthreshold`/`netlink_qtimeout`: it never sets the kernel NFLOG buffer \
             size, so the kernel's default buffer holds about 17 of these packets and flushes \
             after 1 s), `[pcap1] file=OUT.pcap sync=1` as shipped (a write per packet). \
             ulogd2 switches itself to SCHED_RR priority 99: it then preempts the senders on \
             its core"
        ),
        Capturer::CReader => format!(
            "`nflog-pcap {GROUP} OUT.pcap`, benches/c/nflog-pcap.c built for the run with \
             `cc -O2`: binds the group with copy mode packet, a 128 KiB NFLOG buffer, a \
             1000-packet threshold, a 100 ms flush timeout and sequence numbers, takes a 64 MiB \
             socket buffer (SO_RCVBUFFORCE), `recv`s each batch and copies a pcap record \
             header and the payload per packet into a 256 KiB buffer that `write` empties \
             when full (LINKTYPE_RAW); no checksum, no index, no crash safety: the floor a \
             correct reader costs"
        ),
    }
}

/// One traffic run's measurements.
#[derive(Debug)]
struct CaptureRun {
    sent: u64,
    pps: f64,
    cpu_s: f64,
    count: Count,
    file_bytes: u64,
    arrived: Option<u64>,
    self_report: String,
    imp2_lost: u64,
}

/// Starts `cap`, waits until it is ready; with `Some(n)` floods n packets,
/// lets it settle and stops it; with `None` only holds it as long as a
/// traffic run's settle (an idle run: its fixed start-up and stop cost).
fn capture(
    cap: Capturer,
    ns: &VethPair,
    env: &Env,
    dir: &Path,
    tag: &str,
    n: Option<u64>,
) -> Result<CaptureRun, String> {
    let out = dir.join(format!("{}-{tag}.{}", cap.short(), cap.output_ext()));
    let _ = std::fs::remove_file(&out);
    let stdout_path = dir.join(format!("{}-{tag}.stdout", cap.short()));
    let stdout = std::fs::File::create(&stdout_path)
        .map_err(|e| format!("{}: {e}", stdout_path.display()))?;
    let (program, args) = command(cap, env, &out, dir);
    let mut proc = Proc::spawn(ns.exec(&ns.b, &program, &args), cap.short(), stdout.into())?;
    wait_ready(cap, &mut proc)?;
    let arrived0 = arrived(ns).ok();
    let sent = match n {
        Some(n) => Some(flood(ns, env, n)?),
        None => None,
    };
    std::thread::sleep(SETTLE);
    if sent.is_some() {
        // A capturer still working through what was queued is given time
        // (bounded) rather than counted as having lost it: wait until its
        // CPU ticks and its file both stand still for 200 ms.
        let deadline = Instant::now() + STEP;
        let mut last = (proc.ticks(), file_len(&out));
        let mut still = 0;
        while still < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let now = (proc.ticks(), file_len(&out));
            still = if now == last { still + 1 } else { 0 };
            last = now;
        }
    }
    let arrived = arrived0.and_then(|a0| arrived(ns).ok().map(|a1| a1 - a0));
    let exit = proc.stop(cap.stop_signal(), STEP)?;
    let stderr = proc.stderr();
    let json = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let _ = std::fs::remove_file(&stdout_path);
    if !exit.ok {
        let _ = std::fs::remove_file(&out);
        return Err(format!(
            "{} exited with an error: {}{}",
            cap.short(),
            stderr.trim(),
            json.trim()
        ));
    }
    let (count, imp2_lost, self_report) = match cap {
        Capturer::Imp2 | Capturer::Imp2Direct => {
            let c = count_log(&out);
            let v: Value = serde_json::from_str(json.trim())
                .map_err(|e| format!("imp2-record JSON: {e}: {}", json.trim()))?;
            let lost = v["losses"]["records_lost"].as_u64().unwrap_or(u64::MAX);
            let ring = match (
                v["receive_buffers"].as_u64(),
                v["receive_buffer_bytes"].as_u64(),
            ) {
                (Some(n), Some(b)) => format!(", receive buffers {n} x {} KiB", b >> 10),
                _ => String::new(),
            };
            (c, lost, format!("records_lost {lost}{ring}"))
        }
        Capturer::Tcpdump => (
            count_capture(&out),
            0,
            stderr
                .lines()
                .find(|l| l.contains("dropped by kernel"))
                .unwrap_or("no drop report")
                .trim()
                .to_string(),
        ),
        Capturer::Dumpcap => (
            count_capture(&out),
            0,
            stderr
                .lines()
                .find(|l| l.contains("received/dropped"))
                .and_then(|l| l.split(": ").nth(1))
                .map(|s| format!("received/dropped {s}"))
                .unwrap_or_else(|| "no drop report".into()),
        ),
        Capturer::CReader => (
            count_capture(&out),
            0,
            stderr
                .lines()
                .find(|l| l.starts_with("nflog-pcap: "))
                .map(|l| l.trim_start_matches("nflog-pcap: ").trim().to_string())
                .unwrap_or_else(|| "no report".into()),
        ),
        Capturer::Ulogd => {
            // ulogd2 counts nothing, but logs "losing events" when the
            // kernel could not queue to its socket (ENOBUFS), and errors
            // at level 7 and 8.
            let log = ulogd_log(&out);
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            let errors: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("<7>") || l.contains("<8>") || l.contains("losing"))
                .collect();
            let report = match errors.first() {
                None => "no drop count; no error in its log".to_string(),
                Some(first) => format!(
                    "no drop count; {} loss/error lines in its log, the first: `{}`",
                    errors.len(),
                    first.split("> ").nth(1).unwrap_or(first).trim()
                ),
            };
            (count_capture(&out), 0, report)
        }
    };
    let file_bytes = file_len(&out).unwrap_or(0);
    let _ = std::fs::remove_file(&out);
    let count = count?;
    Ok(CaptureRun {
        sent: sent.as_ref().map_or(0, |s| s.sent),
        pps: sent.as_ref().map_or(f64::NAN, |s| s.pps),
        cpu_s: exit.cpu_s,
        count,
        file_bytes,
        arrived,
        self_report,
        imp2_lost,
    })
}

fn file_len(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.len())
}

/// Waits (bounded) until the capturer captures: the NFLOG group is bound
/// in the namespace (seen through the child's own /proc/PID/net), or
/// tcpdump/dumpcap said so on stderr.
fn wait_ready(cap: Capturer, proc: &mut Proc) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let table = format!("/proc/{}/net/netfilter/nfnetlink_log", proc.pid());
    loop {
        let ready = if cap.binds_nflog() {
            std::fs::read_to_string(&table).is_ok_and(|t| {
                t.lines()
                    .any(|l| l.split_whitespace().next() == Some(&GROUP.to_string()))
            })
        } else {
            let err = proc.stderr();
            match cap {
                Capturer::Tcpdump => err.contains("listening on"),
                _ => err.lines().any(|l| l.starts_with("File:")),
            }
        };
        if ready {
            // The readiness signs come just before the capture loop starts.
            std::thread::sleep(Duration::from_millis(100));
            return Ok(());
        }
        if proc.reap(false) {
            return Err(format!(
                "{} exited before it was ready: {}",
                cap.short(),
                proc.stderr().trim()
            ));
        }
        if Instant::now() > deadline {
            proc.kill();
            return Err(format!(
                "{} was not ready within 20 s (killed): {}",
                cap.short(),
                proc.stderr().trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Which capturers can run here, and if not, why.
fn availability(cap: Capturer, env: &Env) -> Result<String, String> {
    match cap {
        Capturer::Imp2 | Capturer::Imp2Direct => {
            version(&env.record.to_string_lossy(), "--version")
        }
        Capturer::Tcpdump => {
            version("tcpdump", "--version").map_err(|e| format!("{e}: apt-get install tcpdump"))
        }
        Capturer::Dumpcap => version("dumpcap", "--version").map_err(|e| {
            format!("{e}: apt-get install tshark (dumpcap comes with wireshark-common)")
        }),
        Capturer::Ulogd => {
            let v = version("ulogd", "--version")
                .map_err(|e| format!("{e}: apt-get install ulogd2 ulogd2-pcap"))?;
            match env.ulogd_plugins {
                Some(_) => Ok(v),
                None => Err(
                    "ulogd2's NFLOG, BASE or PCAP plugin not found: apt-get install ulogd2-pcap"
                        .into(),
                ),
            }
        }
        Capturer::CReader => env
            .c_reader
            .as_ref()
            .map(|_| "nflog-pcap (benches/c/nflog-pcap.c, cc -O2)".to_string())
            .map_err(|e| e.clone()),
    }
}

/// Source of the reference reader.
const C_READER_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/c/nflog-pcap.c");

/// Compiles the reference reader into `dir`.
fn build_c_reader(dir: &Path) -> Result<PathBuf, String> {
    let exe = dir.join("nflog-pcap");
    let out = Command::new("cc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(C_READER_SOURCE)
        .output()
        .map_err(|e| format!("cannot run cc: {e}: apt-get install gcc"))?;
    if !out.status.success() {
        return Err(format!(
            "cc {C_READER_SOURCE} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(exe)
}

fn setup_env(scratch: &Path) -> Result<Env, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root (network namespaces, nftables, NFLOG)".into());
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        version(tool, "--version").map_err(|e| format!("{e}: apt-get install {package}"))?;
    }
    let dir = bin_dir();
    let find = |name: &str| {
        let p = dir.join(name);
        if p.exists() {
            Ok(p)
        } else {
            Err(format!(
                "{} not built: cargo build --release -p imp2-tools -p imp2-testkit -p imp2-record",
                p.display()
            ))
        }
    };
    Ok(Env {
        flood: find("imp2-flood")?,
        record: find("imp2-record")?,
        ulogd_plugins: ulogd_plugins(),
        c_reader: build_c_reader(scratch),
    })
}

/// Runs the whole comparison in scratch directory `dir` (created if
/// needed; the capture files are removed after counting).
pub fn run(dir: &Path, quick: bool) -> NflogSide {
    let plan = if quick {
        Plan {
            rounds: 2,
            packets: 200_000,
            budget: Duration::from_secs(75),
        }
    } else {
        Plan {
            rounds: 5,
            packets: 1_000_000,
            budget: Duration::from_secs(900),
        }
    };
    let started = Instant::now();
    let mut side = NflogSide {
        quick,
        rounds: plan.rounds,
        rounds_done: 0,
        packets: plan.packets,
        setup_error: None,
        baseline_pps: M::default(),
        caps: Vec::new(),
        notes: Vec::new(),
        load: (loadavg(), String::new()),
        took: Duration::ZERO,
        dir: dir.to_path_buf(),
        hot: Default::default(),
    };
    if let Err(e) = run_rounds(dir, &plan, &mut side, started) {
        side.setup_error = Some(e);
    }
    side.load.1 = loadavg();
    side.took = started.elapsed();
    side
}

fn step(started: Instant, what: &str) {
    eprintln!(
        "imp2-bench-nflog: {what} ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
}

fn run_rounds(
    dir: &Path,
    plan: &Plan,
    side: &mut NflogSide,
    started: Instant,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let env = setup_env(dir)?;
    side.caps = Capturer::ALL
        .iter()
        .map(|&c| CapStats::new(c, availability(c, &env), command_text(c)))
        .collect();
    let ns = netns(dir)?;
    // Resolves ARP and warms the path; not measured.
    flood(&ns, &env, 20_000).map_err(|e| format!("warm-up flood: {e}"))?;
    let usable: Vec<usize> = (0..side.caps.len())
        .filter(|&i| side.caps[i].available.is_ok())
        .collect();
    for round in 0..plan.rounds {
        if started.elapsed() > plan.budget {
            side.notes.push(format!(
                "stopped after {round} of {} rounds: the time budget of {} s was used",
                plan.rounds,
                plan.budget.as_secs()
            ));
            break;
        }
        // Rotating order: each capturer meets every position (and so the
        // machine's drift) in turn.
        let mut order = usable.clone();
        if !order.is_empty() {
            let k = round % order.len();
            order.rotate_left(k);
        }
        // Every capture run sits between two no-capture runs (B C B C ...
        // B): its baseline is the mean of the two, which cancels a linear
        // drift of the machine's load over the pair.
        let mut before: Option<f64> = None;
        let mut pending: Option<(usize, f64)> = None;
        for &i in &order {
            let cap = side.caps[i].capturer;
            let base = baseline(side, &ns, &env, plan.packets, round);
            close_pair(side, pending.take(), before, base);
            before = base;
            step(
                started,
                &format!("round {}/{}: {}", round + 1, plan.rounds, cap.short()),
            );
            let tag = format!("r{round}");
            match capture(cap, &ns, &env, dir, &tag, Some(plan.packets)) {
                Ok(run) => {
                    record(side, i, round, &run);
                    pending = Some((i, run.pps));
                }
                Err(e) => side.caps[i]
                    .failures
                    .push(format!("round {}: {e}", round + 1)),
            }
        }
        let after = baseline(side, &ns, &env, plan.packets, round);
        close_pair(side, pending.take(), before, after);
        for &i in &order {
            let cap = side.caps[i].capturer;
            match capture(cap, &ns, &env, dir, &format!("idle{round}"), None) {
                Ok(run) => side.caps[i].idle_cpu.push(run.cpu_s),
                Err(e) => side.caps[i]
                    .failures
                    .push(format!("round {}: idle run: {e}", round + 1)),
            }
        }
        if let Err(e) = side.hot.measure(dir, plan.packets) {
            side.notes
                .push(format!("round {}: the hot path: {e}", round + 1));
        }
        side.rounds_done = round + 1;
    }
    // CPU per packet once every idle run is in: the median start-up cost is
    // subtracted from every traffic run.
    for c in &mut side.caps {
        let idle = c.idle_cpu.med();
        if !idle.is_finite() {
            continue;
        }
        for &(cpu, captured) in &c.raw {
            if captured > 0 {
                c.ns.push((cpu - idle) * 1e9 / captured as f64);
            }
        }
    }
    Ok(())
}

/// A no-capture flood: its packets/s, or `None` (noted) if it failed.
fn baseline(side: &mut NflogSide, ns: &VethPair, env: &Env, n: u64, round: usize) -> Option<f64> {
    match flood(ns, env, n) {
        Ok(b) => {
            side.baseline_pps.push(b.pps);
            Some(b.pps)
        }
        Err(e) => {
            side.notes
                .push(format!("round {}: a baseline run failed: {e}", round + 1));
            None
        }
    }
}

/// The senders' rate kept by capture run `pending` (capturer, its pps),
/// against the mean of the no-capture runs before and after it (or the
/// one that succeeded).
fn close_pair(
    side: &mut NflogSide,
    pending: Option<(usize, f64)>,
    before: Option<f64>,
    after: Option<f64>,
) {
    let Some((i, pps)) = pending else { return };
    let base = match (before, after) {
        (Some(x), Some(y)) => (x + y) / 2.0,
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return,
    };
    side.caps[i].kept.push(pps / base);
}

fn record(side: &mut NflogSide, i: usize, round: usize, run: &CaptureRun) {
    let c = &mut side.caps[i];
    let name = c.capturer.short();
    c.sent += run.sent;
    c.captured += run.count.flood;
    c.imp2_lost += run.imp2_lost;
    c.self_reported.push(run.self_report.clone());
    if run.sent > 0 {
        c.ratio.push(run.count.flood as f64 / run.sent as f64);
    }
    if run.count.total > 0 {
        c.bpp.push(run.file_bytes as f64 / run.count.total as f64);
    }
    c.pps.push(run.pps);
    c.raw.push((run.cpu_s, run.count.flood));
    if run.count.flood != run.sent {
        side.notes.push(format!(
            "round {}: {name} wrote {} of the {} packets sent ({} short; it reported: {})",
            round + 1,
            run.count.flood,
            run.sent,
            run.sent as i64 - run.count.flood as i64,
            run.self_report
        ));
    }
    if let Some(a) = run.arrived {
        if a != run.sent {
            side.notes.push(format!(
                "round {}: during the {name} run {a} packets reached B's input rule of {} sent \
                 (the veth or the backlog dropped the rest before any NFLOG capture)",
                round + 1,
                run.sent
            ));
        }
    }
}

// ---------------------------------------------------------------------------
// Report

fn verdict_rows(side: &NflogSide) -> Option<&CapStats> {
    side.caps
        .iter()
        .find(|c| c.capturer == Capturer::Imp2 && !c.ratio.v.is_empty())
}

/// Why imp2-record has no figures.
fn imp2_missing(side: &NflogSide) -> String {
    if let Some(e) = &side.setup_error {
        return format!("not measured: {e}");
    }
    match side.caps.iter().find(|c| c.capturer == Capturer::Imp2) {
        Some(CapStats {
            available: Err(e), ..
        }) => format!("not measured: {e}"),
        Some(c) if !c.failures.is_empty() => format!("not measured: {}", c.failures.join("; ")),
        _ => "not measured".into(),
    }
}

/// The NFLOG goals of issue 19, as ratios of medians to the reference
/// reader's in the same run (absolute nanoseconds move 1.5-2x between runs
/// on these shared machines, ratios much less).
const GOAL_DEFAULT_VS_READER: f64 = 1.0;
const GOAL_DIRECT_VS_READER: f64 = 0.8;

/// The rows this benchmark adds to the targets table: (target, measured,
/// goal, met?).
pub fn target_rows(side: &NflogSide) -> Vec<(String, String, String, Option<bool>)> {
    let finite = |x: f64| x.is_finite().then_some(x);
    let cap = |which: Capturer| {
        side.caps
            .iter()
            .find(|c| c.capturer == which && !c.ratio.v.is_empty())
    };
    let Some(c) = verdict_rows(side) else {
        let why = imp2_missing(side);
        return vec![
            (
                "imp2-record (NFLOG source) CPU per packet / bare C reader's".into(),
                why.clone(),
                format!("<= {GOAL_DEFAULT_VS_READER:.1}x"),
                None,
            ),
            (
                "imp2-record (NFLOG source) captured/sent (zero loss)".into(),
                why,
                "1.0, zero loss".into(),
                None,
            ),
        ];
    };
    let all_exact = c.all_exact();
    // The verdict stands as measured; the reader is told not to trust it.
    let caveat = if disturbance(side).is_some() {
        "; host disturbed, see the NFLOG section"
    } else {
        ""
    };
    let reader = cap(Capturer::CReader);
    let versus = |mine: &CapStats, goal: f64, extra_ok: bool| {
        let Some(r) = reader else {
            return (
                format!(
                    "{} ns; the reference reader was not measured",
                    mine.ns.show(0)
                ),
                None,
            );
        };
        let x = mine.ns.med() / r.ns.med();
        (
            format!(
                "{x:.2}x ({} ns against {} ns){caveat}",
                mine.ns.show(0),
                r.ns.show(0)
            ),
            finite(x).map(|x| x <= goal && extra_ok),
        )
    };
    let mut rows = Vec::new();
    let (measured, ok) = versus(c, GOAL_DEFAULT_VS_READER, true);
    rows.push((
        "imp2-record (NFLOG source) CPU per packet / bare C reader's (medians, log written)".into(),
        measured,
        format!("<= {GOAL_DEFAULT_VS_READER:.1}x"),
        ok,
    ));
    let direct = cap(Capturer::Imp2Direct);
    if let Some(d) = direct {
        let (measured, ok) = versus(d, GOAL_DIRECT_VS_READER, d.all_exact());
        rows.push((
            "imp2-record --direct (NFLOG source) CPU per packet / bare C reader's, zero loss"
                .into(),
            format!(
                "{measured} ({} of {} packets, {} lost by its own count)",
                d.captured, d.sent, d.imp2_lost
            ),
            format!("<= {GOAL_DIRECT_VS_READER:.1}x, zero loss"),
            ok,
        ));
    }
    rows.push((
        "imp2-record (NFLOG source) captured/sent (zero loss)".into(),
        format!(
            "{} ({} of {} packets, {} lost by its own count)",
            c.ratio.show(4),
            c.captured,
            c.sent,
            c.imp2_lost
        ),
        "1.0, zero loss".into(),
        Some(all_exact),
    ));
    rows.push((
        "senders' rate kept while imp2-record (NFLOG) captures (paired)".into(),
        format!("{}{caveat}", c.kept.show(2)),
        ">= 0.72".into(),
        finite(c.kept.med()).map(|x| x >= 0.72),
    ));
    if let Some(r) = reader {
        let mine: Vec<&CapStats> = [Some(c), direct].into_iter().flatten().collect();
        let widest = mine.iter().map(|m| m.ns.spread()).fold(f64::NAN, f64::max);
        let shown: Vec<String> = mine
            .iter()
            .map(|m| format!("{} {:.2}x", m.capturer.name(), m.ns.spread()))
            .collect();
        rows.push((
            "NFLOG: spread of CPU per packet over the rounds (max/min), imp2's rows against the reference's"
                .into(),
            format!(
                "{}; reference {:.2}x",
                shown.join(", "),
                r.ns.spread()
            ),
            "<= the reference's".into(),
            (widest.is_finite() && r.ns.spread().is_finite()).then(|| widest <= r.ns.spread()),
        ));
    }
    rows
}

/// Largest spread (max / min over the rounds) of the CPU per packet of
/// imp2-record or the reference reader before a run is called disturbed.
/// Quiet full runs stayed within 1.7x (e.g. 162-270 ns); during runs in
/// which other work took the host's cores they spread 3-4x (142-601 ns for
/// the reference reader), and every median moved with them.
const DISTURBED_SPREAD: f64 = 2.0;

/// Why this run's CPU figures cannot carry a verdict, if they cannot: the
/// widest spread among imp2-record's and the reference reader's rounds.
fn disturbance(side: &NflogSide) -> Option<String> {
    let (spread, name, lo, hi) = side
        .caps
        .iter()
        .filter(|c| {
            matches!(
                c.capturer,
                Capturer::Imp2 | Capturer::Imp2Direct | Capturer::CReader
            )
        })
        .filter_map(|c| {
            let (_, lo, hi) = crate::stats(&c.ns.v);
            (c.ns.v.len() >= 2 && lo > 0.0 && hi.is_finite())
                .then(|| (hi / lo, c.capturer.name(), lo, hi))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    (spread > DISTURBED_SPREAD).then(|| {
        format!(
            "**Host disturbed:** {name} cost {lo:.0}-{hi:.0} ns per packet over the rounds \
             ({spread:.1}x; quiet runs stay within {DISTURBED_SPREAD}x): other work took the \
             cores during this run, so its CPU medians and the verdicts drawn from them are not \
             reliable. Run it again."
        )
    })
}

/// imp2-record's CPU per packet against the reference reader's in this
/// run: the goal of <= 150 ns came from that reader's 153-195 ns on the day
/// issue 6 was written, and the machine's speed under the flood drifts by
/// more than that margin, so the same-run ratio is what carries over.
fn reference_line(side: &NflogSide) -> Option<String> {
    let median = |cap: Capturer| {
        side.caps
            .iter()
            .find(|c| c.capturer == cap)
            .map(|c| c.ns.med())
            .filter(|x| x.is_finite() && *x > 0.0)
    };
    let reference = median(Capturer::CReader)?;
    let ratios: Vec<String> = [Capturer::Imp2, Capturer::Imp2Direct]
        .into_iter()
        .filter_map(|cap| {
            median(cap).map(|x| format!("{} {x:.0} ns, {:.2}x", cap.name(), x / reference))
        })
        .collect();
    if ratios.is_empty() {
        return None;
    }
    Some(format!(
        "**Against the reference:** issue 6 set its goal of <= 150 ns per packet from a bare C \
         NFLOG reader writing pcap, measured then at 153-195 ns. In this run such a reader (the \
         reference row) cost {reference:.0} ns per packet; {} of it (medians).",
        ratios.join("; ")
    ))
}

/// The Markdown section `## NFLOG source vs tcpdump, dumpcap, ulogd2`.
pub fn render(side: &NflogSide) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "## NFLOG source vs tcpdump, dumpcap, ulogd2\n");
    if let Some(e) = &side.setup_error {
        let _ = writeln!(o, "not measured: {e}");
        return o;
    }
    let _ = writeln!(
        o,
        "| capturer | captured/sent | CPU ns per captured packet | bytes per packet | sender rate kept (paired) | senders' M packets/s |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    let _ = writeln!(
        o,
        "| none (no capture) | - | - | - | 1 | {} |",
        side.baseline_pps.scaled(1e-6).show(3)
    );
    for c in &side.caps {
        match &c.available {
            Err(e) => {
                let _ = writeln!(o, "| {} | not measured: {e} | | | | |", c.capturer.name());
            }
            Ok(_) if c.ratio.v.is_empty() => {
                let _ = writeln!(
                    o,
                    "| {} | not measured: every run failed (below) | | | | |",
                    c.capturer.name()
                );
            }
            Ok(_) => {
                let _ = writeln!(
                    o,
                    "| {} | {}{} | {} | {} | {} | {} |",
                    c.capturer.name(),
                    c.ratio.show(4),
                    // A median of 1.0000 must not hide a run that lost.
                    if c.captured < c.sent {
                        format!("; {} of {} missing in all", c.sent - c.captured, c.sent)
                    } else {
                        String::new()
                    },
                    c.ns.show(0),
                    c.bpp.show(1),
                    c.kept.show(2),
                    c.pps.scaled(1e-6).show(3)
                );
            }
        }
    }
    if let Some(line) = disturbance(side) {
        let _ = writeln!(o, "\n{line}");
    }
    if let Some(line) = reference_line(side) {
        let _ = writeln!(o, "\n{line}");
    }
    let _ = writeln!(
        o,
        "\nMedians over the rounds, with (min-max, n=rounds) as the spread ({} of {} rounds, \
         {} packets per flood, {} mode, {:.0} s). Load average {} at the start, {} at the end: \
         the two cores are shared with other work, so compare the paired ratios of this run, \
         not absolute figures across runs.",
        side.rounds_done,
        side.rounds,
        side.packets,
        if side.quick { "quick" } else { "full" },
        side.took.as_secs_f64(),
        side.load.0,
        side.load.1
    );
    let versions: Vec<String> = side
        .caps
        .iter()
        .filter_map(|c| c.available.as_ref().ok().map(|v| format!("`{v}`")))
        .collect();
    let startup: Vec<String> = side
        .caps
        .iter()
        .filter(|c| !c.idle_cpu.v.is_empty())
        .map(|c| {
            format!(
                "{} {} ms",
                c.capturer.short(),
                c.idle_cpu.scaled(1e3).show(1)
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "\nMethod: two network namespaces joined by a veth pair, created for the run (names \
         with the pid, deleted on exit), IPv6 off on both. The sender, `imp2-flood --udp \
         {NET}.2:{PORT} -n {} --size {PAYLOAD} --timeout 60` (sendmmsg, 64 datagrams per call, \
         exact counts), sends 92-byte IPv4/UDP packets from A to B as fast as it can. B's nft \
         ruleset, loaded once and the same for every run including the no-capture ones, is \
         `table inet imp2bench {{ chain input {{ type filter hook input priority 0; policy \
         accept; udp dport {PORT} counter log group {GROUP} drop }} }}`. Per round each \
         capturer runs once, in an order rotated by one every round, and every capture run \
         sits between two no-capture floods (B C B C ... B). A run: start the capturer in \
         B, wait until it is ready (imp2-record, \
         the C reader and ulogd2: group {GROUP} listed in B's /proc/net/netfilter/nfnetlink_log; tcpdump: \
         `listening on`; dumpcap: `File:` on stderr) plus 100 ms, flood, hold {} ms (tcpdump's \
         ring blocks retire after libpcap's 1 s timeout, the kernel flushes a partial NFLOG \
         buffer after 1 s) and then until its CPU ticks and file stand still for 200 ms, stop \
         it (SIGINT; ulogd2 SIGTERM) and wait (bounded) for it to exit. Commands: {}. Versions: \
         {}. **captured/sent** = flood packets in the output file (pcap records and pcapng \
         blocks walked in-process, IPv4 UDP to port {PORT}; the imp2 log read with \
         imp2-format's reader) / packets imp2-flood reports sent. **CPU ns per captured \
         packet** = (user + sys CPU of the capturing process from wait4's rusage: all its \
         threads and reaped children) less its start-up cost, / packets captured; the \
         start-up cost is the median over the rounds of idle runs (start, ready, hold {} ms, \
         stop, no traffic): {}. **bytes per packet** = output file size / packets in it (file \
         headers included). **sender rate kept** = imp2-flood's packets/s during the capture \
         run / the mean of its packets/s in the no-capture runs just before and just after. \
         The capture shares the two \
         cores with the sender and the kernel's receive path (which runs in the sender's \
         softirq, NFLOG's and AF_PACKET's copies included), nothing is pinned. The output \
         files are on `{}`.",
        side.packets,
        SETTLE.as_millis(),
        side.caps
            .iter()
            .map(|c| format!("{}: {}", c.capturer.short(), c.command))
            .collect::<Vec<_>>()
            .join("; "),
        if versions.is_empty() {
            "-".into()
        } else {
            versions.join(", ")
        },
        SETTLE.as_millis(),
        if startup.is_empty() {
            "not measured".into()
        } else {
            startup.join(", ")
        },
        side.dir.display()
    );
    let reported: Vec<String> = side
        .caps
        .iter()
        .filter(|c| !c.self_reported.is_empty())
        .map(|c| {
            // Identical reports folded, with how many runs gave each.
            let mut uniq: Vec<(&str, usize)> = Vec::new();
            for r in &c.self_reported {
                match uniq.iter_mut().find(|(x, _)| x == r) {
                    Some((_, k)) => *k += 1,
                    None => uniq.push((r, 1)),
                }
            }
            let list: Vec<String> = uniq
                .iter()
                .map(|(r, k)| format!("{r} ({k} of {} runs)", c.self_reported.len()))
                .collect();
            format!("{}: {}", c.capturer.short(), list.join("; "))
        })
        .collect();
    if !reported.is_empty() {
        let _ = writeln!(
            o,
            "\nLosses the tools reported themselves: {}.",
            reported.join(" | ")
        );
    }
    let live = |c: Capturer| {
        side.caps
            .iter()
            .find(|s| s.capturer == c)
            .map_or_else(M::default, |s| s.ns.clone())
    };
    o +=
        &crate::nflog_breakdown::render(&side.hot, &live(Capturer::Imp2), &live(Capturer::CReader));
    for n in &side.notes {
        let _ = writeln!(o, "\n- note: {n}");
    }
    for c in &side.caps {
        for e in &c.failures {
            let _ = writeln!(o, "\n- failed run ({}): {e}", c.capturer.short());
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference reader compiles warning-free (`-Wall -Wextra
    /// -Werror`), so the benchmark's reference row cannot rot unseen.
    #[test]
    fn reference_reader_builds() {
        let dir = std::env::temp_dir().join(format!("imp2-c-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let built = build_c_reader(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        let exe = built.unwrap();
        assert!(exe.ends_with("nflog-pcap"));
    }

    fn udp_frame() -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        ip[9] = 17;
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x30, 0x39]);
        f.extend_from_slice(&PORT.to_be_bytes());
        f.extend_from_slice(&[0u8; 4 + 64]);
        f
    }

    #[test]
    fn pcap_and_pcapng_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let frame = udp_frame();
        // pcap, little endian, Ethernet: two flood packets and an ARP.
        let mut p = Vec::new();
        p.extend_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
        p.extend_from_slice(&[0u8; 8]);
        p.extend_from_slice(&65535u32.to_le_bytes());
        p.extend_from_slice(&1u32.to_le_bytes());
        let mut arp = frame.clone();
        arp[12] = 0x08;
        arp[13] = 0x06;
        for f in [&frame, &arp, &frame] {
            p.extend_from_slice(&[0u8; 8]);
            p.extend_from_slice(&(f.len() as u32).to_le_bytes());
            p.extend_from_slice(&(f.len() as u32).to_le_bytes());
            p.extend_from_slice(f);
        }
        let pcap = dir.path().join("a.pcap");
        std::fs::write(&pcap, &p).unwrap();
        assert_eq!(count_capture(&pcap).unwrap(), Count { total: 3, flood: 2 });

        // pcapng: SHB, IDB (Ethernet), two EPBs, one with padding.
        let mut g = Vec::new();
        let block = |g: &mut Vec<u8>, t: u32, body: &[u8]| {
            let len = 12 + body.len().div_ceil(4) * 4;
            g.extend_from_slice(&t.to_le_bytes());
            g.extend_from_slice(&(len as u32).to_le_bytes());
            g.extend_from_slice(body);
            g.resize(g.len() + (4 - body.len() % 4) % 4, 0);
            g.extend_from_slice(&(len as u32).to_le_bytes());
        };
        let mut shb = vec![0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0];
        shb.extend_from_slice(&u64::MAX.to_le_bytes());
        block(&mut g, 0x0a0d_0d0a, &shb);
        block(&mut g, 1, &[1, 0, 0, 0, 0xff, 0xff, 0, 0]);
        for f in [&frame, &arp] {
            let mut epb = vec![0u8; 12];
            epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
            epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
            epb.extend_from_slice(f);
            block(&mut g, 6, &epb);
        }
        let ng = dir.path().join("a.pcapng");
        std::fs::write(&ng, &g).unwrap();
        assert_eq!(count_capture(&ng).unwrap(), Count { total: 2, flood: 1 });
    }

    #[test]
    fn raw_ip_is_recognised() {
        let f = udp_frame();
        assert!(is_flood(101, &f[14..]));
        assert!(is_flood(228, &f[14..]));
        assert!(!is_flood(1, &f[..20]));
    }

    #[test]
    fn missing_tools_give_reasons_not_numbers() {
        let side = NflogSide {
            quick: true,
            rounds: 2,
            rounds_done: 0,
            packets: 1,
            setup_error: Some("needs root".into()),
            baseline_pps: M::default(),
            caps: Vec::new(),
            notes: Vec::new(),
            load: (String::new(), String::new()),
            took: Duration::ZERO,
            dir: PathBuf::from("/tmp"),
            hot: Default::default(),
        };
        let rows = target_rows(&side);
        assert_eq!(rows.len(), 3);
        assert!(
            rows.iter()
                .all(|r| r.3.is_none() && r.1.contains("needs root"))
        );
        assert!(render(&side).contains("not measured: needs root"));
    }

    /// A quick run of three complete rounds with these capturers' figures.
    fn three_rounds(caps: Vec<CapStats>) -> NflogSide {
        NflogSide {
            quick: true,
            rounds: 3,
            rounds_done: 3,
            packets: 10,
            setup_error: None,
            baseline_pps: M::default(),
            caps,
            notes: Vec::new(),
            load: (String::new(), String::new()),
            took: Duration::ZERO,
            dir: PathBuf::from("/tmp"),
            hot: Default::default(),
        }
    }

    #[test]
    fn an_unavailable_tool_gets_a_reason_row() {
        let mut imp2 = CapStats::new(Capturer::Imp2, Ok("imp2-record 0.1.0".into()), "x".into());
        for (ratio, ns, kept) in [(1.0, 140.0, 0.8), (1.0, 160.0, 0.7), (1.0, 120.0, 0.75)] {
            imp2.ratio.push(ratio);
            imp2.ns.push(ns);
            imp2.kept.push(kept);
        }
        let ulogd = CapStats::new(
            Capturer::Ulogd,
            Err("`ulogd` not found: apt-get install ulogd2 ulogd2-pcap".into()),
            "y".into(),
        );
        let side = three_rounds(vec![imp2, ulogd]);
        let text = render(&side);
        assert!(text.contains(
            "| ulogd2 (NFLOG in, PCAP out) | not measured: `ulogd` not found: apt-get install \
             ulogd2 ulogd2-pcap | | | | |"
        ));
        assert!(text.contains("| 140 (120-160, n=3) |"), "{text}");
        let rows = target_rows(&side);
        assert_eq!(rows[0].3, Some(true));
        assert_eq!(rows[1].3, Some(true));
        assert_eq!(rows[2].3, Some(true));
        // 120-160 ns is a quiet run's spread.
        assert!(!text.contains("Host disturbed"), "{text}");
        assert!(rows.iter().all(|r| !r.1.contains("disturbed")));
    }

    #[test]
    fn a_disturbed_run_says_so() {
        let mut imp2 = CapStats::new(Capturer::Imp2, Ok("imp2-record 0.1.0".into()), "x".into());
        let mut reader = CapStats::new(Capturer::CReader, Ok("nflog-pcap".into()), "y".into());
        for (ns, reader_ns) in [(240.0, 190.0), (260.0, 150.0), (250.0, 601.0)] {
            imp2.ratio.push(1.0);
            imp2.ns.push(ns);
            imp2.kept.push(0.8);
            reader.ratio.push(1.0);
            reader.ns.push(reader_ns);
        }
        let side = three_rounds(vec![imp2, reader]);
        let text = render(&side);
        assert!(
            text.contains(
                "**Host disturbed:** bare C NFLOG reader writing pcap (reference) cost 150-601 ns \
                 per packet over the rounds (4.0x;"
            ),
            "{text}"
        );
        let rows = target_rows(&side);
        // Still judged as measured, with the caveat beside the figures.
        assert_eq!(rows[0].3, Some(false));
        assert!(
            rows[0]
                .1
                .ends_with("; host disturbed, see the NFLOG section")
        );
        assert!(
            rows[2]
                .1
                .ends_with("; host disturbed, see the NFLOG section")
        );
        assert!(
            !rows[1].1.contains("disturbed"),
            "capture counts do not drift"
        );
    }
}

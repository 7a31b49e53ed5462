//! What a run needs: commands, namespaces, the capturers' command lines,
//! their availability, the reference C reader.

use super::*;

// ---------------------------------------------------------------------------
// Helpers: commands, processes, namespaces

/// First line of `program --version` (stdout or stderr), if it runs.
pub(super) fn version(program: &str, arg: &str) -> Result<String, String> {
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

pub(super) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The flood's namespaces (the harness's veth pair, IPv6 off: no
/// neighbour discovery or MLD packets in the AF_PACKET captures, only the
/// flood and one ARP exchange) with the NFLOG ruleset loaded in B.
pub(super) fn netns(dir: &Path) -> Result<VethPair, String> {
    let ns = VethPair::new("imp2nf", NET, None)?;
    ns.nft(&ruleset(), dir)?;
    Ok(ns)
}

/// Packets the flood rule has counted so far (arrived at B's input).
pub(super) fn arrived(ns: &VethPair) -> Result<u64, String> {
    ns.counters()?
        .get(RULE)
        .copied()
        .ok_or_else(|| "nft: the rule's counter is missing".to_string())
}

/// Comment of the flood's rule (names its counter).
pub(super) const RULE: &str = "flood";

pub(super) fn ruleset() -> String {
    format!(
        "table inet imp2bench {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    \
         udp dport {PORT} counter log group {GROUP} drop comment \"{RULE}\"\n  }}\n}}\n"
    )
}

// ---------------------------------------------------------------------------
// The runs

/// Sizes of the run.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    pub(super) rounds: usize,
    pub(super) packets: u64,
    /// Stop starting rounds after this long (every round is itself bounded).
    pub(super) budget: Duration,
}

/// The binaries and configuration a run needs.
#[derive(Debug)]
pub(super) struct Env {
    pub(super) flood: PathBuf,
    pub(super) record: PathBuf,
    /// Directory of ulogd2's plugins.
    pub(super) ulogd_plugins: Option<PathBuf>,
    /// The compiled reference reader, or why it could not be built.
    pub(super) c_reader: Result<PathBuf, String>,
}

/// What the sender reported.
#[derive(Debug)]
pub(super) struct Flood {
    pub(super) sent: u64,
    pub(super) pps: f64,
}

pub(super) fn flood(ns: &VethPair, env: &Env, n: u64) -> Result<Flood, String> {
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
pub(super) fn ulogd_plugins() -> Option<PathBuf> {
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
pub(super) fn ulogd_conf(plugins: &Path, out: &Path, logfile: &Path) -> String {
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
pub(super) fn ulogd_log(out: &Path) -> PathBuf {
    out.with_extension("ulogd.log")
}

/// The program and arguments of a capturer writing to `out`.
pub(super) fn command(cap: Capturer, env: &Env, out: &Path, dir: &Path) -> (PathBuf, Vec<String>) {
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
pub(super) fn command_text(cap: Capturer) -> String {
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

/// Which capturers can run here, and if not, why.
pub(super) fn availability(cap: Capturer, env: &Env) -> Result<String, String> {
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
pub(super) const C_READER_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/c/nflog-pcap.c");

/// Compiles the reference reader into `dir`.
pub(super) fn build_c_reader(dir: &Path) -> Result<PathBuf, String> {
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

pub(super) fn setup_env(scratch: &Path) -> Result<Env, String> {
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

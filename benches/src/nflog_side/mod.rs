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

mod count;
mod render;
mod run;
mod setup;
#[cfg(test)]
mod tests;

pub use self::count::{Count, count_capture, count_log};
pub use self::render::{render, target_rows};
pub use self::run::run;
#[allow(unused_imports)] // the siblings take what they need through `use super::*`
use self::{count::*, render::*, run::*, setup::*};

/// UDP port the flood goes to; the rule matches it.
pub(super) const PORT: u16 = 9999;
/// Third octet of the run's addresses (inside its own namespaces, so no
/// clash with the tests; imp2-flood only sends to 10.199.0.0/16).
pub(super) const NET: &str = "10.199.250";
/// UDP payload per datagram: 92-byte IPv4 packets.
pub(super) const PAYLOAD: usize = 64;
/// The NFLOG group of the rule. Groups are per network namespace, and a
/// group released by one reader binds again at once (checked while writing
/// this), so one group, one ruleset for every run.
pub(super) const GROUP: u16 = 7600;
/// Held after the flood ends before the capturer is stopped: tcpdump's
/// TPACKET_V3 blocks retire after libpcap's 1000 ms timeout and the kernel
/// flushes a partial NFLOG buffer after its default 1 s (ulogd2 sets no
/// flush timeout), so a shorter wait would count queued packets as lost.
pub(super) const SETTLE: Duration = Duration::from_millis(1200);
/// Bound on starting, stopping and helper commands.
pub(super) const STEP: Duration = Duration::from_secs(30);

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

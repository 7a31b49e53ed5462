//! Shared helpers for the criterion suites in `benches/benches/`, the bare
//! receiver (`imp2-bare-recv`) and the report (`imp2-bench-report`):
//! synthetic batches and logs, running the workspace binaries against each
//! other over real netlink (bounded in time), process CPU time, and the
//! receive queue of a netlink socket from `/proc/net/netlink`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imp2_format::log::{LogHeader, LogWriter};
use imp2_format::wire::{BatchBuilder, BatchTrailer, abi};
use imp2_testkit::synth::{PacketSynth, SynthOptions};

pub mod nflog_breakdown;
pub mod nflog_side;
pub mod report;

pub use imp2_testkit::harness::{Loadgen, Output, bin, bin_dir, signal, wait};
pub use imp2_testkit::sys::cpu_seconds;

/// Batch payload the module (and imp2-loadgen) fills at most with the
/// default config: `batch_bytes - 512` bytes.
pub const BATCH_PAYLOAD: usize = abi::BATCH_BYTES_DEFAULT as usize - 512;

/// Records of `size` bytes that fill one default batch (the loadgen's
/// `records_per_batch`).
pub fn records_per_batch(size: usize) -> u64 {
    let each = abi::nlmsg_align(abi::NLMSG_HDRLEN + abi::record::SIZE + size);
    let by_bytes = (BATCH_PAYLOAD - abi::NLMSG_HDRLEN - abi::trailer::SIZE) / each;
    (by_bytes as u64).min(u64::from(abi::BATCH_RECORDS_DEFAULT))
}

/// Synthetic packets of the given sizes (both families, all transports,
/// flows of up to 32 packets), as imp2-loadgen makes them.
pub fn synth(sizes: &[usize], seed: u64) -> PacketSynth {
    PacketSynth::new(
        seed,
        SynthOptions {
            sizes: sizes.to_vec(),
            ..SynthOptions::default()
        },
    )
    .expect("synth options")
}

/// `records` synthetic records of `size` bytes packed into full default
/// batches, byte for byte as the module builds them. Returns the batches
/// and the packet bytes they carry.
pub fn batches(size: usize, records: usize) -> (Vec<Vec<u8>>, u64) {
    let mut synth = synth(&[size], 1);
    let mut builder = BatchBuilder::new(BATCH_PAYLOAD, abi::BATCH_RECORDS_DEFAULT, 0);
    let mut buf = vec![0u8; size.max(64) + 64];
    let mut out = Vec::new();
    let mut ts = 1_700_000_000_000_000_000u64;
    let mut bytes = 0u64;
    let mut seq = 0;
    for _ in 0..records {
        let r = synth.next_record(&mut buf, size, ts);
        bytes += r.data.len() as u64;
        ts += 1000;
        if builder.push(&r).is_err() {
            seq += 1;
            let t = BatchTrailer {
                seq,
                ..Default::default()
            };
            out.push(builder.finish(&t).to_vec());
            builder.clear();
            builder.push(&r).expect("a record fits an empty batch");
        }
    }
    if !builder.is_empty() {
        let t = BatchTrailer {
            seq: seq + 1,
            ..Default::default()
        };
        out.push(builder.finish(&t).to_vec());
    }
    (out, bytes)
}

/// The header the benches give their logs.
pub fn log_header() -> LogHeader {
    LogHeader {
        created_ns: 1_700_000_000_000_000_000,
        snaplen: 65535,
        source: "imp2-benches".into(),
        hostname: "bench".into(),
        kernel_release: String::new(),
        tsresol_digits: 9,
        interfaces: Vec::new(),
    }
}

/// Writes a log of `records` synthetic packets (sizes drawn from `sizes`),
/// committing every 500 records like the recorder does per batch.
pub fn write_log(path: &Path, sizes: &[usize], records: u64) {
    let mut synth = synth(sizes, 7);
    let max = sizes.iter().copied().max().unwrap_or(64);
    let mut buf = vec![0u8; max + 64];
    let mut w = LogWriter::create(path, &log_header()).expect("create log");
    let mut ts = 1_700_000_000_000_000_000u64;
    for i in 0..records {
        let r = synth.next_record(&mut buf, 65535, ts);
        ts += 1000;
        w.append(&r).expect("append");
        if i % 500 == 499 {
            w.commit().expect("commit");
        }
    }
    w.commit().expect("commit");
    w.finish(ts).expect("finish");
}

/// Prints one stage of a profiling example: wall and CPU time (user +
/// system, so the kernel's share of writes and faults counts) per item,
/// from `started` and `cpu` (from [`cpu_seconds`]) until now.
pub fn print_stage(what: &str, started: Instant, cpu: (f64, f64), items: usize, unit: &str) {
    let per = |secs: f64| secs * 1e9 / items as f64;
    let wall = per(started.elapsed().as_secs_f64());
    let now = cpu_seconds();
    let (user, sys) = (per(now.0 - cpu.0), per(now.1 - cpu.1));
    println!(
        "{what:32} {wall:6.1} ns/{unit} wall, {:6.1} CPU ({user:.1} user + {sys:.1} system)",
        user + sys
    );
}

/// One stage line of a profiling example, as [`print_stage`] prints it:
/// CPU ns per item, user and system.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// The stage's name (the line's first column, trimmed).
    pub name: String,
    /// User + system CPU ns per item.
    pub cpu: f64,
    /// User CPU ns per item.
    pub user: f64,
    /// System CPU ns per item.
    pub sys: f64,
}

/// The stages a profiling example printed (lines like `walk (fast)   17.5
/// ns/packet wall,   10.6 CPU (10.6 user + 0.0 system)`).
pub fn parse_stages(stdout: &str) -> Vec<Stage> {
    let number_before = |line: &str, word: &str| -> Option<f64> {
        let end = line.find(word)?;
        line[..end]
            .split_whitespace()
            .last()?
            .trim_start_matches('(')
            .parse()
            .ok()
    };
    stdout
        .lines()
        .filter_map(|line| {
            let wall = line.find(" ns/")?;
            let name = line[..wall].rsplit_once(' ')?.0.trim().to_string();
            Some(Stage {
                name,
                cpu: number_before(line, " CPU")?,
                user: number_before(line, " user")?,
                sys: number_before(line, " system")?,
            })
        })
        .collect()
}

/// Runs `cmd` with its output piped, at most `timeout`; fails, naming the
/// program, when it cannot start or does not succeed (with its stderr).
pub fn run_checked(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let program = Path::new(cmd.get_program()).display().to_string();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    let out = wait(child, timeout);
    if !out.ok {
        return Err(format!("{program} failed: {}", out.stderr.trim()));
    }
    Ok(out)
}

/// Runs the profiling example `name` (built into `examples/` beside the
/// binaries) with `args`, at most `timeout`, and returns its stages.
pub fn run_example(name: &str, args: &[String], timeout: Duration) -> Result<Vec<Stage>, String> {
    let exe = bin_dir().join("examples").join(name);
    let out = run_checked(Command::new(&exe).args(args), timeout)?;
    let stages = parse_stages(&out.stdout);
    if stages.is_empty() {
        return Err(format!("{name}: no stage lines in: {}", out.stdout.trim()));
    }
    Ok(stages)
}

/// The stage called `name` among `stages`.
pub fn stage<'a>(stages: &'a [Stage], name: &str) -> Result<&'a Stage, String> {
    stages
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("no stage {name:?} among {stages:?}"))
}

/// The log-append baselines that the `log_append` criterion suite and the
/// `append_bandwidth` example set beside the writer: `target` bytes of
/// already encoded log frames `enc` (repeated) into a fresh file at `path`,
/// I/O cost only. Neither flushes: the caller times, then syncs if it wants.
pub mod append_baseline {
    use std::fs::{File, OpenOptions};
    use std::io::Write;
    use std::path::Path;

    /// `write()` in 1 MiB calls. Returns the file.
    pub fn write(path: &Path, enc: &[u8], target: u64) -> File {
        let mut f = File::create(path).expect("create");
        let mut done = 0u64;
        while done < target {
            let off = (done % enc.len() as u64) as usize;
            let n = (enc.len() - off).min(1 << 20).min((target - done) as usize);
            f.write_all(&enc[off..off + n]).expect("write");
            done += n as u64;
        }
        f
    }

    /// `ftruncate` to `target`, one shared map, `memcpy`: every page faults
    /// on its first write (and a sparse file on a full disk would SIGBUS:
    /// the naive way the writer avoids). Returns the file and the map.
    pub fn mmap_faulting(path: &Path, enc: &[u8], target: u64) -> (File, memmap2::MmapMut) {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .expect("create");
        f.set_len(target).expect("ftruncate");
        // SAFETY: a file this function just created and alone uses; the
        // caller drops the map before it closes or removes the file.
        let mut map = unsafe { memmap2::MmapMut::map_mut(&f) }.expect("mmap");
        let mut done = 0usize;
        while (done as u64) < target {
            let off = done % enc.len();
            let n = (enc.len() - off).min(1 << 20).min(target as usize - done);
            map[done..done + n].copy_from_slice(&enc[off..off + n]);
            done += n;
        }
        (f, map)
    }
}

/// Which receiver a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiverKind {
    /// imp2-record, batches from the loadgen.
    Batched,
    /// imp2-record, the loadgen in `--per-record` mode.
    PerRecord,
    /// imp2-bare-recv: receives and walks batches, nothing else.
    Bare,
    /// imp2-record --direct, batches from the loadgen.
    Direct,
}

impl ReceiverKind {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            ReceiverKind::Batched => "imp2-record (batched)",
            ReceiverKind::PerRecord => "imp2-record --per-record",
            ReceiverKind::Bare => "bare receiver (walk only)",
            ReceiverKind::Direct => "imp2-record --direct (batched)",
        }
    }

    /// Extra loadgen arguments.
    pub fn loadgen_args(self) -> &'static [&'static str] {
        match self {
            ReceiverKind::PerRecord => &["--per-record"],
            _ => &[],
        }
    }

    /// Starts the receiver against loadgen port `peer`, stopping after `n`
    /// records or `limit`.
    pub fn spawn(self, peer: u32, log: &Path, n: u64, rcvbuf: &str, limit: Duration) -> Child {
        let name = if self == ReceiverKind::Bare {
            "imp2-bare-recv"
        } else {
            "imp2-record"
        };
        let mut cmd = Command::new(bin(name));
        cmd.args(["--unit", "2", "--peer", &peer.to_string(), "--json"])
            .args(["--rcvbuf", rcvbuf])
            .args(["--duration", &format!("{:.3}", limit.as_secs_f64())])
            .args(["-c", &n.to_string()]);
        if self != ReceiverKind::Bare {
            cmd.arg("-q").arg("-o").arg(log);
        }
        if self == ReceiverKind::Direct {
            cmd.arg("--direct");
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"))
    }
}

/// Bytes queued (`Rmem`) on the NETLINK_USERSOCK socket bound to port
/// `port`, from `/proc/net/netlink`; `None` if there is no such socket.
pub fn netlink_rmem(port: u32) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netlink").ok()?;
    // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() >= 5 && f[1] == "2" && f[2].parse::<u32>().ok() == Some(port))
            .then(|| f[4].parse::<u64>().ok())
            .flatten()
    })
}

/// Median, minimum and maximum of `v` (NaN for an empty set).
pub fn stats(v: &[f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let med = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (med, s[0], s[n - 1])
}

/// A measured value: one number per round, shown as the median and the
/// spread (`median (min-max, n=K)`), as every table of the report shows it.
#[derive(Clone, Debug, Default)]
pub struct M {
    /// One value per round.
    pub v: Vec<f64>,
}

impl M {
    /// Adds one round's value.
    pub fn push(&mut self, x: f64) {
        self.v.push(x);
    }

    /// Median (NaN when empty).
    pub fn med(&self) -> f64 {
        stats(&self.v).0
    }

    /// `median (min-max, n=K)` with `digits` decimals.
    pub fn show(&self, digits: usize) -> String {
        let (med, lo, hi) = stats(&self.v);
        if self.v.is_empty() {
            return "not measured".into();
        }
        if self.v.len() == 1 {
            return format!("{med:.digits$}");
        }
        format!(
            "{med:.digits$} ({lo:.digits$}-{hi:.digits$}, n={})",
            self.v.len()
        )
    }

    /// Spread of the rounds as max / min (NaN with fewer than two rounds
    /// or a round at or below zero): the issue's "no wider than the
    /// reference" compares these.
    pub fn spread(&self) -> f64 {
        let (_, lo, hi) = stats(&self.v);
        if self.v.len() < 2 || lo <= 0.0 {
            return f64::NAN;
        }
        hi / lo
    }

    /// Every value times `k` (units).
    pub fn scaled(&self, k: f64) -> M {
        M {
            v: self.v.iter().map(|x| x * k).collect(),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn stage_lines_are_parsed() {
        let out = "510 datagrams of ~589 packets (17 distinct), 300000 packets\n\
                   walk (fast)                        17.5 ns/packet wall,   10.6 CPU (10.6 user + 0.0 system)\n\
                   walk (fast) + log append          107.9 ns/packet wall,   55.1 CPU (21.0 user + 34.1 system)\n\
                   \x20 98.1 bytes/packet on disk\n";
        let stages = parse_stages(out);
        assert_eq!(stages.len(), 2, "{stages:?}");
        let s = stage(&stages, "walk (fast) + log append").unwrap();
        assert_eq!((s.cpu, s.user, s.sys), (55.1, 21.0, 34.1));
        assert_eq!(stage(&stages, "walk (fast)").unwrap().cpu, 10.6);
        assert!(stage(&stages, "walk").is_err());
    }

    use super::*;

    #[test]
    fn batches_are_full_and_walk() {
        let (b, bytes) = batches(64, 3000);
        assert_eq!(bytes, 3000 * 64);
        let per = records_per_batch(64) as usize;
        assert_eq!(b.len(), 3000usize.div_ceil(per));
        let records: usize = b
            .iter()
            .map(|x| {
                imp2_format::wire::BatchWalker::new(x)
                    .filter(|i| {
                        matches!(
                            i,
                            Ok(imp2_format::wire::BatchItem {
                                message: imp2_format::wire::BatchMessage::Record(_),
                                ..
                            })
                        )
                    })
                    .count()
            })
            .sum();
        assert_eq!(records, 3000);
    }

    #[test]
    fn stats_median() {
        assert_eq!(stats(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(stats(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
    }
}

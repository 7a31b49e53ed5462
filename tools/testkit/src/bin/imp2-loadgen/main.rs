//! imp2-loadgen: a user-space stand-in for the imp2 kernel module.
//!
//! It binds a netlink socket (NETLINK_USERSOCK by default), waits for a
//! recorder's REGISTER, validates its config exactly as the module does and
//! answers with the module's ACK, then streams synthetic packets in batches
//! built byte for byte like the module's: per simulated CPU sequence
//! numbers, running totals and drop counts in every trailer, non-blocking
//! sends whose EAGAIN failures become reported drops, FINAL batches at the
//! end, then the UNREGISTER handshake. `--dry-run` builds the same batches
//! without a socket and measures the generation rate.

mod digest;
mod hostile;
mod link;
mod pool;
mod stream;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use imp2_format::wire::{Config, abi};
use imp2_format::{Family, Hook};
use imp2_testkit::synth::{PacketSynth, SynthOptions, Transport};
use serde::Serialize;

use crate::hostile::Hostile;
use crate::link::{Channel, ControlStats, DrySink, Link};
use crate::stream::{Filter, SKB_OVERHEAD, Stop, Stream, StreamOptions};

/// Stand-in for the imp2 kernel module: speaks its netlink protocol to a
/// recorder and streams synthetic packets, for tests and benchmarks.
///
/// Batches are sized from the recorder's REGISTER config like the module
/// sizes them: a batch datagram holds at most `batch_bytes - 512` bytes
/// (512 stands for the skb overhead, SKB_WITH_OVERHEAD) and
/// `batch_records` records; packets are cut at `snaplen` and filtered by
/// the config's hooks, families and protocols.
#[derive(Debug, Parser)]
#[command(name = "imp2-loadgen", version)]
struct Args {
    /// Netlink unit (protocol number) to bind; 2 is NETLINK_USERSOCK, which
    /// two user processes can use without any module.
    #[arg(long, default_value_t = 2)]
    unit: i32,

    /// Port id to bind (the recorder's --peer); default: kernel-assigned,
    /// printed on stderr and written to --ready-file.
    #[arg(long, value_name = "PORTID")]
    port: Option<u32>,

    /// Records to generate (after filtering; hostile extras not included).
    #[arg(short = 'n', long, value_name = "N")]
    count: u64,

    /// Records per second, paced by sleeping between batches; 0 is as fast
    /// as possible. Paced batches also close when the config's flush
    /// interval expires (trailer flag TIMER).
    #[arg(long, value_name = "RPS", default_value_t = 0)]
    rate: u64,

    /// Packet sizes in bytes from the network header on (1..=65535), mixed
    /// at random; sizes below the headers give header-only packets.
    #[arg(
        long,
        value_name = "BYTES[,BYTES...]",
        value_delimiter = ',',
        default_value = "64"
    )]
    size: Vec<usize>,

    /// Seed of the packet stream: the same seed gives the same packets.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,

    /// Simulated CPUs: batches go round-robin to CPU ids 0..K, each with
    /// its own sequence numbers, running totals and drop counters.
    #[arg(long, value_name = "K", default_value_t = 1)]
    cpus: u32,

    /// Interface indexes to attribute packets to, at random.
    #[arg(
        long,
        value_name = "IFINDEX[,...]",
        value_delimiter = ',',
        default_value = "1"
    )]
    ifindex: Vec<u32>,

    /// Address families to synthesize: ipv4, ipv6.
    #[arg(
        long,
        value_name = "FAMILY[,...]",
        value_delimiter = ',',
        default_value = "ipv4,ipv6"
    )]
    family: Vec<String>,

    /// Transports to synthesize: udp, tcp, icmp (ICMPv6 over IPv6).
    #[arg(
        long,
        value_name = "PROTO[,...]",
        value_delimiter = ',',
        default_value = "udp,tcp,icmp"
    )]
    proto: Vec<String>,

    /// Capture points to attribute packets to: pre (PRE_ROUTING), out
    /// (LOCAL_OUT).
    #[arg(
        long,
        value_name = "HOOK[,...]",
        value_delimiter = ',',
        default_value = "pre,out"
    )]
    hook: Vec<String>,

    /// Packets synthesized once (cut at the recorder's snaplen) and replayed
    /// in order, round and round, each record with its own timestamp: the
    /// fast path. 0 synthesizes every packet afresh (slower).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pool: usize,

    /// Longest flow in packets: a flow shares family, transport, hook,
    /// interface, addresses and ports over 1..=N consecutive packets; 1
    /// makes every packet independent.
    #[arg(long, value_name = "N", default_value_t = 32)]
    flow_len: usize,

    /// The historic baseline: every record is its own datagram (one RECORD
    /// and its DONE trailer), one send and one receiver wake-up per record.
    #[arg(long)]
    per_record: bool,

    /// After every K batches, send one extra hostile datagram holding
    /// exactly one malformed or unexpected item and no valid trailer,
    /// outside the sequence accounting; its V (1-3) valid records count as
    /// sent (hostile_records) and are in the digest. Kinds, in turn:
    /// (a) V records then a message whose nlmsg_len runs past the end;
    /// (b) V records then nlmsg_len < 16; (c) V records then 3 trailing
    /// bytes; (d) V records, a message of unknown type 0x7ff0, V records;
    /// (e) V records and no DONE; (f) an NLMSG_ERROR of -EIO alone; (g) a
    /// record, a RECORD shorter than struct imp2_record, a record; (h) V
    /// records then a DONE with a 4-byte payload.
    #[arg(long, value_name = "K", default_value_t = 0)]
    hostile_every: u64,

    /// Seconds to wait for a valid REGISTER before giving up (exit 2).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    register_timeout: f64,

    /// Seconds to wait for the recorder's UNREGISTER after the FINAL
    /// batches.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    linger: f64,

    /// Seconds the FINAL batches may wait for room in the recorder's
    /// buffer (they retry on EAGAIN so that no drop goes unreported).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    final_timeout: f64,

    /// Print one JSON object on stdout at exit instead of text.
    #[arg(long)]
    json: bool,

    /// Write the bound port id (decimal, newline) into PATH once listening
    /// (written to PATH.tmp then renamed, so readers never see it partial).
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,

    /// SO_SNDBUF in bytes (SO_SNDBUFFORCE when permitted); by default it is
    /// raised if needed so that a whole batch fits.
    #[arg(long, value_name = "BYTES")]
    sndbuf: Option<usize>,

    /// Build the batches but send nothing (no socket, no REGISTER): measures
    /// the generation rate. Uses --snaplen, --batch-bytes, --batch-records
    /// as the config.
    #[arg(long)]
    dry_run: bool,

    /// --dry-run only: snaplen of the simulated config.
    #[arg(long, value_name = "BYTES", default_value_t = abi::SNAPLEN_DEFAULT)]
    snaplen: u32,

    /// --dry-run only: batch_bytes of the simulated config.
    #[arg(long, value_name = "BYTES", default_value_t = abi::BATCH_BYTES_DEFAULT)]
    batch_bytes: u32,

    /// --dry-run only: batch_records of the simulated config.
    #[arg(long, value_name = "N", default_value_t = abi::BATCH_RECORDS_DEFAULT)]
    batch_records: u32,
}

/// What the run did; printed at exit.
#[derive(Debug, Serialize)]
struct Report {
    port_id: u32,
    recorder_port_id: Option<u32>,
    /// done, unregistered, refused (recorder gone), register_timeout.
    stop: &'static str,
    generated: u64,
    filtered: u64,
    sent: u64,
    dropped: u64,
    dropped_by_cause: [u64; abi::DROP_CAUSES],
    batches_sent: u64,
    batches_dropped: u64,
    hostile_datagrams: u64,
    hostile_records: u64,
    hostile_unsent: u64,
    unreported_drops: u64,
    finals_sent: bool,
    digest: String,
    elapsed_s: f64,
    records_per_s: f64,
    /// CPU time (user + system) the streaming took.
    cpu_s: f64,
    unregistered: bool,
    register_refused: u64,
    register_busy: u64,
    cpus: u32,
    per_record: bool,
    pool: usize,
    dry_run: bool,
    batch_payload_bytes: usize,
    batch_records: u32,
    snaplen: u32,
}

impl Report {
    fn print(&self, json: bool) {
        let mut out = std::io::stdout().lock();
        if json {
            let text =
                serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
            let _ = writeln!(out, "{text}");
            return;
        }
        let _ = writeln!(out, "{}", self.text());
    }

    /// The human form.
    fn text(&self) -> String {
        let recorder = self
            .recorder_port_id
            .map_or_else(|| "none".to_string(), |p| p.to_string());
        let mode = if self.per_record {
            "per-record".to_string()
        } else {
            format!(
                "batched ({} B payload, {} records)",
                self.batch_payload_bytes, self.batch_records
            )
        };
        let causes: Vec<String> = abi::DROP_CAUSE_NAMES
            .iter()
            .zip(self.dropped_by_cause)
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        format!(
            "imp2-loadgen: {stop}{dry}{unreg}\n\
             \x20 port {port} -> recorder {recorder}; {cpus} cpu(s), {mode}, snaplen {snaplen}, pool {pool}\n\
             \x20 generated {generated} records (filtered {filtered}) in {elapsed:.3} s: \
             {rate:.2} M records/s (cpu {cpu:.3} s)\n\
             \x20 sent {sent} records in {batches} batches; dropped {dropped} [{causes}] in {bdrop} batches\n\
             \x20 hostile {hd} datagrams ({hr} records, {hu} unsent); unreported drops {unrep}; finals sent: {finals}\n\
             \x20 register refused {refused}, busy {busy}\n\
             \x20 digest {digest}",
            stop = self.stop,
            dry = if self.dry_run { " (dry run)" } else { "" },
            unreg = if self.unregistered {
                ", unregistered"
            } else {
                ""
            },
            port = self.port_id,
            cpus = self.cpus,
            snaplen = self.snaplen,
            pool = self.pool,
            generated = self.generated,
            filtered = self.filtered,
            elapsed = self.elapsed_s,
            rate = self.records_per_s / 1e6,
            cpu = self.cpu_s,
            sent = self.sent,
            batches = self.batches_sent,
            dropped = self.dropped,
            causes = causes.join(", "),
            bdrop = self.batches_dropped,
            hd = self.hostile_datagrams,
            hr = self.hostile_records,
            hu = self.hostile_unsent,
            unrep = self.unreported_drops,
            finals = if self.finals_sent { "yes" } else { "no" },
            refused = self.register_refused,
            busy = self.register_busy,
            digest = self.digest,
        )
    }
}

fn parse_list<T>(
    names: &[String],
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, String> {
    names
        .iter()
        .map(|n| parse(n.trim()).ok_or_else(|| format!("unknown {what} {n:?}")))
        .collect()
}

fn synth_options(args: &Args) -> Result<SynthOptions, String> {
    Ok(SynthOptions {
        sizes: args.size.clone(),
        families: parse_list(&args.family, "family", |n| match n {
            "ipv4" | "4" | "inet" => Some(Family::IPV4),
            "ipv6" | "6" | "inet6" => Some(Family::IPV6),
            _ => None,
        })?,
        transports: parse_list(&args.proto, "protocol", Transport::from_name)?,
        hooks: parse_list(&args.hook, "hook", |n| match n {
            "pre" | "pre_routing" | "in" => Some(Hook::PRE_ROUTING),
            "out" | "local_out" => Some(Hook::LOCAL_OUT),
            _ => None,
        })?,
        ifindexes: args.ifindex.clone(),
        flow_len: args.flow_len,
    })
}

/// CPU time (user + system) of this process so far.
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec the call fills in.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &raw mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)
}

fn write_ready_file(path: &PathBuf, port: u32) -> std::io::Result<()> {
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{port}\n"))?;
    std::fs::rename(&tmp, path)
}

/// Outcome of one streaming session.
struct Session {
    stop: Stop,
    finals_sent: bool,
    elapsed: Duration,
    cpu: Duration,
    stats: stream::Stats,
    batch_payload_bytes: usize,
}

fn stream_session(
    args: &Args,
    options: &SynthOptions,
    config: Config,
    port_id: u32,
    channel: &mut impl Channel,
) -> Result<Session, String> {
    let filter = Filter::new(&config);
    let synth = PacketSynth::new(args.seed, options.clone()).map_err(|e| e.to_string())?;
    let hostile_synth = PacketSynth::new(args.seed ^ 0x4057_11e5_4057_11e5, options.clone())
        .map_err(|e| e.to_string())?;
    let possible = filter.passes_any(options);
    let hostile = Hostile::new(hostile_synth, args.seed.rotate_left(17), port_id, possible);
    let opts = StreamOptions {
        count: args.count,
        rate: args.rate,
        cpus: args.cpus,
        per_record: args.per_record,
        hostile_every: args.hostile_every,
        final_timeout: secs(args.final_timeout),
        records_possible: possible,
        pool: args.pool,
    };
    let mut stream = Stream::new(opts, config, synth, hostile, port_id);
    let started = Instant::now();
    let cpu_started = cpu_time();
    let stop = stream
        .run(channel)
        .map_err(|e| format!("control socket: {e}"))?;
    let finals_sent = match stop {
        Stop::Refused => {
            stream.abandon();
            false
        }
        Stop::Done | Stop::Unregistered(_) => stream.finish(channel),
    };
    Ok(Session {
        stop,
        finals_sent,
        elapsed: started.elapsed(),
        cpu: cpu_time().saturating_sub(cpu_started),
        stats: stream.stats,
        batch_payload_bytes: (config.batch_bytes as usize).saturating_sub(SKB_OVERHEAD),
    })
}

/// Everything the report is made of.
struct Outcome<'a> {
    port_id: u32,
    recorder: Option<u32>,
    config: Config,
    session: Option<&'a Session>,
    stop: &'static str,
    unregistered: bool,
    control: ControlStats,
}

fn report(args: &Args, outcome: &Outcome<'_>) -> Report {
    let Outcome {
        port_id,
        recorder,
        ref config,
        session,
        stop,
        unregistered,
        control,
    } = *outcome;
    let default_stats = stream::Stats::default();
    let stats = session.map_or(&default_stats, |s| &s.stats);
    let elapsed = session.map_or(0.0, |s| s.elapsed.as_secs_f64());
    Report {
        port_id,
        recorder_port_id: recorder,
        stop,
        generated: stats.generated,
        filtered: stats.filtered,
        sent: stats.sent,
        dropped: stats.dropped,
        dropped_by_cause: stats.dropped_by_cause,
        batches_sent: stats.batches_sent,
        batches_dropped: stats.batches_dropped,
        hostile_datagrams: stats.hostile_datagrams,
        hostile_records: stats.hostile_records,
        hostile_unsent: stats.hostile_unsent,
        unreported_drops: stats.unreported_drops,
        finals_sent: session.is_some_and(|s| s.finals_sent),
        digest: stats.digest.to_hex(),
        elapsed_s: elapsed,
        cpu_s: session.map_or(0.0, |s| s.cpu.as_secs_f64()),
        records_per_s: if elapsed > 0.0 {
            stats.generated as f64 / elapsed
        } else {
            0.0
        },
        unregistered,
        register_refused: control.refused,
        register_busy: control.busy,
        cpus: args.cpus,
        per_record: args.per_record,
        pool: args.pool,
        dry_run: args.dry_run,
        batch_payload_bytes: session.map_or(0, |s| s.batch_payload_bytes),
        batch_records: if args.per_record {
            1
        } else {
            config.batch_records
        },
        snaplen: config.snaplen,
    }
}

fn stop_name(stop: &Stop) -> &'static str {
    match stop {
        Stop::Done => "done",
        Stop::Unregistered(_) => "unregistered",
        Stop::Refused => "refused",
    }
}

fn run(args: &Args) -> Result<ExitCode, String> {
    if args.cpus == 0 {
        return Err("--cpus must be at least 1".into());
    }
    let options = synth_options(args)?;
    // Check the options once, up front.
    PacketSynth::new(args.seed, options.clone()).map_err(|e| e.to_string())?;

    if args.dry_run {
        let config = Config {
            snaplen: args.snaplen,
            batch_bytes: args.batch_bytes,
            batch_records: args.batch_records,
            ..Config::default()
        };
        config.validate().map_err(|e| format!("config: {e}"))?;
        let mut sink = DrySink::default();
        let session = stream_session(args, &options, config, 0, &mut sink)?;
        let stop = stop_name(&session.stop);
        let outcome = Outcome {
            port_id: 0,
            recorder: None,
            config,
            session: Some(&session),
            stop,
            unregistered: false,
            control: ControlStats::default(),
        };
        report(args, &outcome).print(args.json);
        return Ok(ExitCode::SUCCESS);
    }

    let mut link =
        Link::open(args.unit, args.port).map_err(|e| format!("netlink unit {}: {e}", args.unit))?;
    let port_id = link.port_id();
    eprintln!(
        "imp2-loadgen: listening on netlink unit {}, port id {port_id}",
        args.unit
    );
    if let Some(path) = &args.ready_file {
        write_ready_file(path, port_id).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let registered = link
        .wait_register(secs(args.register_timeout))
        .map_err(|e| format!("waiting for REGISTER: {e}"))?;
    let Some((recorder, config)) = registered else {
        eprintln!(
            "imp2-loadgen: no valid REGISTER within {} s",
            args.register_timeout
        );
        let outcome = Outcome {
            port_id,
            recorder: None,
            config: Config::default(),
            session: None,
            stop: "register_timeout",
            unregistered: false,
            control: link.stats,
        };
        report(args, &outcome).print(args.json);
        return Ok(ExitCode::from(2));
    };
    // A batch must fit the send buffer (netlink refuses len > sndbuf - 32).
    let need = config.batch_bytes as usize + 4096;
    let want = args.sndbuf.unwrap_or(need);
    if args.sndbuf.is_some() || link.sndbuf().unwrap_or(0) < need {
        if let Err(e) = link.set_sndbuf(want) {
            eprintln!("imp2-loadgen: SO_SNDBUF {want}: {e}");
        }
    }

    let session = stream_session(args, &options, config, port_id, &mut link)?;
    let mut unregistered = false;
    match session.stop {
        Stop::Unregistered(request) => {
            link.ack_unregister(&request)
                .map_err(|e| format!("acknowledging UNREGISTER: {e}"))?;
            unregistered = true;
        }
        Stop::Done => {
            if let Some(request) = link
                .wait_control(secs(args.linger))
                .map_err(|e| format!("waiting for UNREGISTER: {e}"))?
            {
                link.ack_unregister(&request)
                    .map_err(|e| format!("acknowledging UNREGISTER: {e}"))?;
                unregistered = true;
            }
        }
        Stop::Refused => {}
    }
    let stop = stop_name(&session.stop);
    let outcome = Outcome {
        port_id,
        recorder: Some(recorder),
        config,
        session: Some(&session),
        stop,
        unregistered,
        control: link.stats,
    };
    report(args, &outcome).print(args.json);
    let ok = session.stop != Stop::Refused && session.finals_sent;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("imp2-loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

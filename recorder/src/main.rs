//! imp2-record: receives batched capture records from the imp2 kernel
//! module (or a stand-in producer) over netlink and appends them to a
//! compact log; `imp2-convert` turns the log into pcapng or pcap.
//!
//! Exit status: 0 the run ended normally (signal, -c or --duration) and the
//! log is complete; 1 a runtime error (the log, if any, holds everything
//! committed before it); 2 a usage error.

mod accounting;
mod imp2;
mod interfaces;
mod netlink;
mod nflog;
mod progress;
mod receive;
mod session;
mod signals;
mod sink;
mod source;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use imp2_format::log::WriteMode;
use imp2_format::wire::{Config, ConfigError, abi};

use receive::IoMode;

/// `eprintln!` that cannot panic: after SIGHUP the terminal may be gone and
/// writing to it fails, and a lost message must not cost the log its
/// clean close.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Record packets captured by the imp2 kernel module into a compact log.
///
/// Examples:
///   imp2-record -o run.log                  # everything, until Ctrl-C
///   imp2-record -o run.log -c 100000 --proto udp --hooks pre
///   imp2-convert run.log -o run.pcapng && tshark -r run.pcapng
#[derive(Parser, Debug)]
#[command(name = "imp2-record", version, verbatim_doc_comment)]
struct Args {
    /// Log file to write (created or truncated).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,

    /// Stop after writing N records (at least 1).
    #[arg(short = 'c', long = "count", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,

    /// Stop after SECS seconds (fractions allowed).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,

    /// Bytes to capture per packet, from the network header on (1-65535;
    /// NFLOG copies at most 65531).
    #[arg(short = 's', long, value_name = "N", default_value_t = abi::SNAPLEN_DEFAULT)]
    snaplen: u32,

    /// Capture points: `pre` (received, before routing), `out` (sent locally).
    #[arg(
        long,
        value_name = "LIST",
        default_value = "pre,out",
        value_delimiter = ','
    )]
    hooks: Vec<String>,

    /// Address families: 4, 6.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "4,6",
        value_delimiter = ','
    )]
    family: Vec<String>,

    /// Only these transport protocols: names (icmp, igmp, tcp, udp, gre, esp,
    /// ah, icmpv6, sctp) or numbers 0-255. Default: all.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    proto: Vec<String>,

    /// Size of one kernel batch in bytes, kernel overhead included (4096-1048576).
    /// Receive buffers are this large.
    #[arg(long, value_name = "BYTES", default_value_t = abi::BATCH_BYTES_DEFAULT)]
    batch_bytes: u32,

    /// Records per batch at most (1-65535).
    #[arg(long, value_name = "N", default_value_t = abi::BATCH_RECORDS_DEFAULT)]
    batch_records: u32,

    /// A non-empty batch is sent at the latest this many milliseconds after
    /// its first record (0.1-10000).
    #[arg(long, value_name = "MS", default_value_t = f64::from(abi::FLUSH_INTERVAL_US_DEFAULT) / 1000.0)]
    flush_ms: f64,

    /// Socket receive buffer: how much the kernel may queue while the
    /// recorder is busy (suffixes K, M, G). Needs CAP_NET_ADMIN beyond
    /// net.core.rmem_max.
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = parse_size)]
    rcvbuf: usize,

    /// Netlink unit of the module (its `unit` parameter).
    #[arg(long, value_name = "N", default_value_t = abi::NETLINK_UNIT)]
    unit: i32,

    /// Port id of the producer: 0 is the kernel module; imp2-loadgen prints
    /// its own.
    #[arg(long, value_name = "PORTID", default_value_t = 0)]
    peer: u32,

    /// Where packets come from: `imp2` (the kernel module) or `nflog:GROUP`
    /// (the kernel's NFLOG, no module needed; a rule must log to GROUP, e.g.
    /// `nft add rule inet filter input log group GROUP`). With NFLOG the
    /// rule selects packets (not --hooks/--proto) and timestamps are µs.
    #[arg(long, value_name = "SOURCE", default_value = "imp2", value_parser = parse_source)]
    source: SourceArg,

    /// NFLOG: size of one kernel buffer (4096-131072; suffix K).
    #[arg(long, value_name = "BYTES", default_value = "128K", value_parser = parse_size)]
    nflog_bufsize: usize,

    /// NFLOG: packets per kernel buffer at most (the queue threshold, at
    /// least 1).
    #[arg(long, value_name = "N", default_value_t = nflog::QTHRESH_DEFAULT,
          value_parser = clap::value_parser!(u32).range(1..))]
    nflog_qthresh: u32,

    /// NFLOG: a non-empty buffer is sent at the latest this many
    /// milliseconds after its first packet (rounded up to the kernel's 10 ms
    /// steps; 0: at the next timer tick).
    #[arg(long, value_name = "MS", default_value_t = nflog::FLUSH_MS_DEFAULT)]
    nflog_flush_ms: u32,

    /// Receive path: `uring` (io_uring, falls back to recv when unavailable)
    /// or `recv`.
    #[arg(long, value_name = "MODE", default_value = "uring", value_parser = parse_io)]
    io: IoMode,

    /// Write the log with direct I/O (O_DIRECT) from a writer thread, about
    /// a MiB at a time, instead of a buffered write per batch: less CPU per
    /// record, but what `kill -9` or a crash can lose grows from nothing
    /// committed to up to about a MiB or 100 ms of records. Needs a file
    /// system with direct I/O (ext4, xfs, btrfs; tmpfs from Linux 6.6).
    #[arg(long)]
    direct: bool,

    /// Print the final summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,

    /// No status line and no human summary.
    #[arg(short = 'q', long)]
    quiet: bool,

    /// Whether `-s` was given on the command line (the default is above
    /// NFLOG's limit, and cutting it is no news to mention).
    #[arg(skip)]
    snaplen_given: bool,
}

impl Args {
    /// Parses `argv`, noting whether `-s` was given; exits on a usage error
    /// as `Parser::parse` does.
    fn parse_from_args(argv: impl IntoIterator<Item = std::ffi::OsString>) -> Args {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Args::command().get_matches_from(argv);
        let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        args.snaplen_given =
            matches.value_source("snaplen") == Some(clap::parser::ValueSource::CommandLine);
        args
    }

    /// With NFLOG, the notice for a snap length the user asked for above
    /// what NFLOG copies (`COPY_RANGE_MAX`), which would otherwise be cut
    /// silently.
    fn nflog_snaplen_notice(&self) -> Option<String> {
        let max = nflog::COPY_RANGE_MAX;
        (self.snaplen_given && self.snaplen > max).then(|| {
            format!(
                "-s {}: packets are cut at {max} bytes, NFLOG's limit",
                self.snaplen
            )
        })
    }
}

fn parse_size(s: &str) -> Result<usize, String> {
    let (digits, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1usize << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a size (e.g. 65536, 512K, 64M, 1G)"))
}

/// `--source`
#[derive(Clone, Copy, Debug)]
enum SourceArg {
    Imp2,
    Nflog(u16),
}

fn parse_source(s: &str) -> Result<SourceArg, String> {
    match s.split_once(':') {
        None if s == "imp2" => Ok(SourceArg::Imp2),
        Some(("nflog", group)) => group
            .parse::<u16>()
            .map(SourceArg::Nflog)
            .map_err(|_| format!("`{group}`: an NFLOG group is a number 0-65535")),
        _ => Err(format!("`{s}`: expected `imp2` or `nflog:GROUP`")),
    }
}

/// The NFLOG source for `--source nflog:GROUP`, or the exit code.
fn open_nflog(
    args: &Args,
    group: u16,
    families: u32,
    notice: &mut dyn FnMut(String),
) -> Result<nflog::NflogSource, ExitCode> {
    if !args.proto.is_empty() || args.hooks != ["pre", "out"] {
        say!(
            "imp2-record: --hooks and --proto select packets for the imp2 module; with \
             --source nflog the NFLOG rule selects them"
        );
        return Err(ExitCode::from(2));
    }
    let settings = nflog::Settings {
        group,
        snaplen: args.snaplen,
        bufsize: args.nflog_bufsize,
        qthresh: args.nflog_qthresh,
        flush_ms: args.nflog_flush_ms,
        rcvbuf: args.rcvbuf,
        families,
    };
    if let Err(e) = settings.validate() {
        say!("imp2-record: {e}");
        return Err(ExitCode::from(2));
    }
    let source = nflog::NflogSource::open(settings).map_err(|e| {
        say!("imp2-record: {e}");
        ExitCode::from(1)
    })?;
    if source.rcvbuf_capped() {
        notice(format!(
            "SO_RCVBUFFORCE needs CAP_NET_ADMIN; fell back to SO_RCVBUF: the receive buffer is \
             {} bytes (capped by net.core.rmem_max), not {}",
            source.rcvbuf(),
            args.rcvbuf
        ));
    }
    if let Some(line) = args.nflog_snaplen_notice() {
        notice(line);
    }
    Ok(source)
}

fn parse_io(s: &str) -> Result<IoMode, String> {
    match s {
        "uring" => Ok(IoMode::Uring),
        "recv" => Ok(IoMode::Recv),
        _ => Err(format!("`{s}`: expected `uring` or `recv`")),
    }
}

fn protocol_number(name: &str) -> Result<u8, String> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" | "icmp6" => 58,
        "sctp" => 132,
        other => other
            .parse::<u8>()
            .map_err(|_| format!("unknown protocol `{name}`"))?,
    })
}

/// Turns the arguments into the REGISTER configuration.
fn config_from(args: &Args) -> Result<Config, String> {
    let mut config = Config {
        snaplen: args.snaplen,
        batch_bytes: args.batch_bytes,
        batch_records: args.batch_records,
        flush_interval_us: (args.flush_ms * 1000.0).round() as u32,
        hooks: 0,
        families: 0,
        ..Config::default()
    };
    for hook in &args.hooks {
        config.hooks |= match hook.as_str() {
            "pre" | "prerouting" | "in" => abi::HOOK_F_PRE_ROUTING,
            "out" | "output" | "localout" => abi::HOOK_F_LOCAL_OUT,
            other => return Err(format!("--hooks: unknown hook `{other}` (pre, out)")),
        };
    }
    for family in &args.family {
        config.families |= match family.as_str() {
            "4" | "ipv4" | "inet" => abi::FAMILY_F_IPV4,
            "6" | "ipv6" | "inet6" => abi::FAMILY_F_IPV6,
            other => return Err(format!("--family: unknown family `{other}` (4, 6)")),
        };
    }
    for proto in &args.proto {
        config.allow_protocol(protocol_number(proto).map_err(|e| format!("--proto: {e}"))?);
    }
    let (lo, hi) = (
        f64::from(abi::FLUSH_INTERVAL_US_MIN) / 1000.0,
        f64::from(abi::FLUSH_INTERVAL_US_MAX) / 1000.0,
    );
    if !(lo..=hi).contains(&args.flush_ms) {
        return Err(format!(
            "--flush-ms must be {lo}-{hi} ms, not {}",
            args.flush_ms
        ));
    }
    config.validate().map_err(|e| match e {
        // Named as the user typed them, not as the ABI's fields.
        ConfigError::OutOfRange(field, value, range) => {
            let option = match field {
                "snaplen" => "-s/--snaplen",
                "batch_bytes" => "--batch-bytes",
                "batch_records" => "--batch-records",
                other => other,
            };
            format!("{option} must be in {range}, not {value}")
        }
        e => format!("invalid capture settings: {e}"),
    })?;
    Ok(config)
}

fn main() -> ExitCode {
    let args = Args::parse_from_args(std::env::args_os());
    let config = match config_from(&args) {
        Ok(c) => c,
        Err(e) => {
            say!("imp2-record: {e}");
            return ExitCode::from(2);
        }
    };
    let duration = match args.duration {
        Some(s) if !(s.is_finite() && s > 0.0) => {
            say!("imp2-record: --duration must be a positive number of seconds");
            return ExitCode::from(2);
        }
        Some(s) => match Duration::try_from_secs_f64(s) {
            Ok(d) => Some(d),
            Err(_) => {
                say!("imp2-record: --duration {s} is too long");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    if args.output.as_os_str() == "-" {
        // The log is written in place (its header is rewritten at every
        // commit), so it cannot be a pipe.
        say!("imp2-record: -o -: the log must be a file; convert it afterwards with imp2-convert");
        return ExitCode::from(2);
    }
    let opts = session::Options {
        output: args.output.clone(),
        count: args.count,
        duration,
        io: args.io,
        write_mode: if args.direct {
            WriteMode::Direct
        } else {
            WriteMode::Pwrite
        },
        progress: !args.quiet,
    };
    let quiet = args.quiet;
    let mut notice = |line: String| {
        if !quiet {
            say!("imp2-record: {line}");
        }
    };
    let mut source: Box<dyn source::Source> = match args.source {
        SourceArg::Nflog(group) => match open_nflog(&args, group, config.families, &mut notice) {
            Ok(s) => Box::new(s),
            Err(code) => return code,
        },
        SourceArg::Imp2 => {
            let source = match imp2::Imp2Source::open(args.unit, args.peer, args.rcvbuf, config) {
                Ok(s) => s,
                Err(e) => {
                    say!("imp2-record: {e}");
                    return ExitCode::from(1);
                }
            };
            let sock = source.socket();
            if sock.rcvbuf_capped {
                notice(format!(
                    "SO_RCVBUFFORCE needs CAP_NET_ADMIN; fell back to SO_RCVBUF: the receive \
                     buffer is {} bytes (capped by net.core.rmem_max), not {}",
                    sock.rcvbuf, args.rcvbuf
                ));
            }
            Box::new(source)
        }
    };
    match session::run(&opts, source.as_mut(), &mut notice) {
        Ok(summary) => {
            if !args.quiet {
                use std::io::Write as _;
                let _ = write!(std::io::stderr(), "{}", report::human(&summary));
            }
            if args.json {
                use std::io::Write as _;
                if let Err(e) = writeln!(std::io::stdout(), "{}", report::json(&summary)) {
                    say!("imp2-record: cannot print the JSON summary: {e}");
                }
            }
            if let Some(e) = &summary.write_error {
                say!("imp2-record: {e}");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            say!("imp2-record: {e}");
            ExitCode::from(1)
        }
    }
}

mod report {
    //! The final summary, for people and as JSON.

    use std::fmt::Write;

    use imp2_format::log::{StopCause, StopReason};

    use crate::session::Summary;

    pub fn human(s: &Summary) -> String {
        let f = &s.footer;
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "imp2-record: {} records ({} bytes captured) in {:.3} s, {:.2} M records/s, \
             {} batches via {}; stopped by {}",
            f.records,
            f.captured_bytes,
            secs,
            f.records as f64 / secs / 1e6,
            s.batches,
            s.io,
            stopped_by(&s.stop)
        );
        let lost = f.losses.records();
        if f.losses.is_zero() {
            let _ = writeln!(out, "imp2-record: nothing lost");
        } else {
            let causes: Vec<String> = f
                .losses
                .named()
                .iter()
                .filter(|(_, v)| *v != 0)
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(
                out,
                "imp2-record: {lost} records lost ({})",
                causes.join(", ")
            );
        }
        if let Some(m) = &s.last_malformed {
            let _ = writeln!(out, "imp2-record: last malformed message: {m}");
        }
        if s.beyond_count > 0 {
            let _ = writeln!(
                out,
                "imp2-record: {} records arrived after the count was reached (not written)",
                s.beyond_count
            );
        }
        if !s.unregistered {
            let _ = writeln!(
                out,
                "imp2-record: the producer did not acknowledge UNREGISTER"
            );
        }
        let _ = writeln!(out, "imp2-record: wrote {}", s.output.display());
        out
    }

    /// What stopped the run, in the words of the summary's "stopped by"
    /// (also the JSON's `stopped_by`, which scripts may match): `signal
    /// SIGINT`, `count 1000 reached`, `duration 60 s reached`, `write error:
    /// No space left on device`, `receive error: ...`.
    fn stopped_by(stop: &StopReason) -> String {
        let d = &stop.detail;
        match stop.cause {
            StopCause::Signal => format!("signal {d}"),
            StopCause::Count => format!("count {d} reached"),
            StopCause::Duration => format!("duration {d} reached"),
            StopCause::WriteError => format!("write error: {d}"),
            StopCause::ReceiveError => format!("receive error: {d}"),
            // The recorder writes no cause it does not know.
            StopCause::Other(_) => stop.to_string(),
        }
    }

    fn escape(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    pub fn json(s: &Summary) -> String {
        let f = &s.footer;
        let mut losses = String::new();
        for (k, v) in f.losses.named() {
            let _ = write!(losses, "\"{k}\":{v},");
        }
        let _ = write!(losses, "\"records_lost\":{}", f.losses.records());
        let mut source_fields = String::new();
        for (k, v) in &s.source_fields {
            let _ = write!(source_fields, "\"{k}\":{v},");
        }
        let opt = |o: &Option<String>| o.as_deref().map_or("null".to_string(), escape);
        format!(
            "{{\"output\":{},\"records\":{},\"captured_bytes\":{},\"original_bytes\":{},\
             \"first_ns\":{},\"last_ns\":{},\"batches\":{},\"received_bytes\":{},\
             \"beyond_count\":{},\"elapsed_s\":{:.6},\"cpu_user_s\":{:.6},\"cpu_sys_s\":{:.6},\"io\":\"{}\",\"write\":\"{}\",{}\
             \"unregistered\":{},\"stopped_by\":{},\"stop\":{{\"cause\":\"{}\",\"code\":{},\"detail\":{}}},\
             \"last_malformed\":{},\"write_error\":{},\"losses\":{{{}}}}}",
            escape(&s.output.display().to_string()),
            f.records,
            f.captured_bytes,
            f.original_bytes,
            f.first_ns,
            f.last_ns,
            s.batches,
            s.received_bytes,
            s.beyond_count,
            s.elapsed.as_secs_f64(),
            s.cpu.0.as_secs_f64(),
            s.cpu.1.as_secs_f64(),
            s.io,
            s.write,
            source_fields,
            s.unregistered,
            escape(&stopped_by(&s.stop)),
            s.stop.cause.name(),
            s.stop.cause.code(),
            escape(&s.stop.detail),
            opt(&s.last_malformed),
            opt(&s.write_error),
            losses
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Args {
        let argv = ["imp2-record", "-o", "x.log"].iter().chain(extra);
        Args::parse_from_args(argv.map(std::ffi::OsString::from))
    }

    /// The default snap length (65535) is above NFLOG's limit too, but
    /// cutting it is what everyone gets: only a snap length the user asked
    /// for gets the notice.
    #[test]
    fn nflog_snaplen_notice_only_for_an_explicit_snaplen_above_the_limit() {
        const { assert!(abi::SNAPLEN_DEFAULT > nflog::COPY_RANGE_MAX) };
        assert_eq!(parse(&[]).nflog_snaplen_notice(), None);
        assert_eq!(
            parse(&["-s", "65535"]).nflog_snaplen_notice().as_deref(),
            Some("-s 65535: packets are cut at 65531 bytes, NFLOG's limit")
        );
        assert!(parse(&["--snaplen=65532"]).nflog_snaplen_notice().is_some());
        assert_eq!(parse(&["-s", "65531"]).nflog_snaplen_notice(), None);
        assert_eq!(parse(&["-s", "96"]).nflog_snaplen_notice(), None);
    }
}

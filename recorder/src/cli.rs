//! The command line of imp2-record: its options, how they are parsed and
//! checked, and the capture settings they make.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use imp2_format::log::WriteMode;
use imp2_format::wire::{Config, ConfigError, abi};
use imp2_tools::cli::count_at_least_one;

use crate::capture_filter::FilterArgs;
use crate::receive::IoMode;
use crate::source::nflog;

/// The tool's name, first word of every line it prints.
pub const TOOL: &str = "imp2-record";

/// Record packets captured by the imp2 kernel module into a compact log.
///
/// Examples:
///   imp2-record -o run.log                  # everything, until Ctrl-C
///   imp2-record -o run.log -c 100000 --proto udp --hooks pre
///   imp2-record -o dns.log -i eth0 udp port 53   # tcpdump's filter syntax
///   imp2-convert run.log -o run.pcapng && tshark -r run.pcapng
#[derive(Parser, Debug)]
#[command(name = "imp2-record", version, verbatim_doc_comment)]
pub struct Args {
    /// Log file to write (created or truncated).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        required_unless_present = "dump"
    )]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub filter: FilterArgs,

    /// Stop after writing N records (at least 1).
    #[arg(short = 'c', long = "count", value_name = "N", allow_negative_numbers = true,
          value_parser = count_at_least_one::<u64>)]
    pub count: Option<u64>,

    /// Stop after SECS seconds (fractions allowed).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true,
          value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Bytes to capture per packet, from the network header on (1-65535;
    /// NFLOG copies at most 65531).
    #[arg(short = 's', long, value_name = "N", default_value_t = abi::SNAPLEN_DEFAULT)]
    pub snaplen: u32,

    /// Capture points: `pre` (received, before routing), `out` (sent locally).
    #[arg(
        long,
        value_name = "LIST",
        default_value = "pre,out",
        value_delimiter = ','
    )]
    pub hooks: Vec<String>,

    /// Address families: 4, 6.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "4,6",
        value_delimiter = ','
    )]
    pub family: Vec<String>,

    /// Only these transport protocols: names (icmp, igmp, tcp, udp, gre, esp,
    /// ah, icmpv6, sctp) or numbers 0-255. Default: all.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub proto: Vec<String>,

    /// Size of one kernel batch in bytes, kernel overhead included (4096-1048576).
    /// Receive buffers are this large.
    #[arg(long, value_name = "BYTES", default_value_t = abi::BATCH_BYTES_DEFAULT)]
    pub batch_bytes: u32,

    /// Records per batch at most (1-65535).
    #[arg(long, value_name = "N", default_value_t = abi::BATCH_RECORDS_DEFAULT)]
    pub batch_records: u32,

    /// A non-empty batch is sent at the latest this many milliseconds after
    /// its first record (0.1-10000).
    #[arg(long, value_name = "MS", allow_negative_numbers = true,
          default_value_t = f64::from(abi::FLUSH_INTERVAL_US_DEFAULT) / 1000.0)]
    pub flush_ms: f64,

    /// Socket receive buffer: how much the kernel may queue while the
    /// recorder is busy (suffixes K, M, G). Needs CAP_NET_ADMIN beyond
    /// net.core.rmem_max.
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = parse_size)]
    pub rcvbuf: usize,

    /// Netlink unit of the module (its `unit` parameter).
    #[arg(long, value_name = "N", default_value_t = abi::NETLINK_UNIT)]
    pub unit: i32,

    /// Port id of the producer: 0 is the kernel module; imp2-loadgen prints
    /// its own.
    #[arg(long, value_name = "PORTID", default_value_t = 0)]
    pub peer: u32,

    /// Where packets come from: `imp2` (the kernel module) or `nflog:GROUP`
    /// (the kernel's NFLOG, no module needed; a rule must log to GROUP, e.g.
    /// `nft add rule inet filter input log group GROUP`). With NFLOG the
    /// rule selects packets (not --hooks/--proto) and timestamps are µs.
    #[arg(long, value_name = "SOURCE", default_value = "imp2", value_parser = parse_source)]
    pub source: SourceArg,

    /// NFLOG: size of one kernel buffer (4096-131072; suffix K).
    #[arg(long, value_name = "BYTES", default_value = "128K", value_parser = parse_size)]
    pub nflog_bufsize: usize,

    /// NFLOG: packets per kernel buffer at most (the queue threshold, at
    /// least 1).
    #[arg(long, value_name = "N", default_value_t = nflog::QTHRESH_DEFAULT,
          allow_negative_numbers = true, value_parser = count_at_least_one::<u32>)]
    pub nflog_qthresh: u32,

    /// NFLOG: a non-empty buffer is sent at the latest this many
    /// milliseconds after its first packet (rounded up to the kernel's 10 ms
    /// steps; 0: at the next timer tick).
    #[arg(long, value_name = "MS", default_value_t = nflog::FLUSH_MS_DEFAULT)]
    pub nflog_flush_ms: u32,

    /// Receive path: `uring` (io_uring, falls back to recv when unavailable)
    /// or `recv`.
    #[arg(long, value_name = "MODE", default_value = "uring", value_parser = parse_io)]
    pub io: IoMode,

    /// Write the log with direct I/O (O_DIRECT) from a writer thread, about
    /// a MiB at a time, instead of a buffered write per batch: less CPU per
    /// record, but what `kill -9` or a crash can lose grows from nothing
    /// committed to up to about a MiB or 100 ms of records. Needs a file
    /// system with direct I/O (ext4, xfs, btrfs; tmpfs from Linux 6.6).
    #[arg(long)]
    pub direct: bool,

    /// How the log is written: `pwrite` (a buffered write per batch, the
    /// default), `direct` (as --direct) or `mmap` (records encoded straight
    /// into a shared map of the file: no copy per batch, but the kernel
    /// zeroes every new page first; as crash-safe as `pwrite`).
    #[arg(long, value_name = "MODE", value_parser = parse_write_mode)]
    pub write_mode: Option<WriteMode>,

    /// Print the final summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    /// No status line and no human summary.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Whether `-s` was given on the command line (the default is above
    /// NFLOG's limit, and cutting it is no news to mention).
    #[arg(skip)]
    pub snaplen_given: bool,
}

impl Args {
    /// Parses `argv`, noting whether `-s` was given; a usage error is one
    /// line (and a JSON object with `--json`) and exit 2.
    pub fn parse_from_args(argv: impl IntoIterator<Item = std::ffi::OsString>) -> Args {
        let (mut args, matches) =
            imp2_tools::cli::parse_from::<Args>(TOOL, argv.into_iter().collect());
        args.snaplen_given =
            matches.value_source("snaplen") == Some(clap::parser::ValueSource::CommandLine);
        args
    }

    /// How the log is written: `--write-mode`, of which `--direct` is the
    /// shorthand for `direct`; a usage error when they disagree.
    pub fn write_mode(&self) -> Result<WriteMode, String> {
        match (self.direct, self.write_mode) {
            (true, Some(mode)) if mode != WriteMode::Direct => Err(format!(
                "--direct is --write-mode direct: it cannot be used with --write-mode {}",
                write_mode_name(mode)
            )),
            (true, _) => Ok(WriteMode::Direct),
            (false, mode) => Ok(mode.unwrap_or_default()),
        }
    }

    /// With NFLOG, the notice for a snap length the user asked for above
    /// what NFLOG copies (`COPY_RANGE_MAX`), which would otherwise be cut
    /// silently.
    pub fn nflog_snaplen_notice(&self) -> Option<String> {
        let max = nflog::COPY_RANGE_MAX;
        (self.snaplen_given && self.snaplen > max).then(|| {
            format!(
                "-s {}: packets are cut at {max} bytes, NFLOG's limit",
                self.snaplen
            )
        })
    }
}

pub fn parse_size(s: &str) -> Result<usize, String> {
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
pub enum SourceArg {
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

fn parse_io(s: &str) -> Result<IoMode, String> {
    match s {
        "uring" => Ok(IoMode::Uring),
        "recv" => Ok(IoMode::Recv),
        _ => Err(format!("`{s}`: expected `uring` or `recv`")),
    }
}

fn parse_write_mode(s: &str) -> Result<WriteMode, String> {
    [WriteMode::Pwrite, WriteMode::Direct, WriteMode::Mmap]
        .into_iter()
        .find(|&m| write_mode_name(m) == s)
        .ok_or_else(|| format!("`{s}`: expected `pwrite`, `direct` or `mmap`"))
}

fn write_mode_name(mode: WriteMode) -> &'static str {
    match mode {
        WriteMode::Pwrite => "pwrite",
        WriteMode::Direct => "direct",
        WriteMode::Mmap => "mmap",
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
pub fn config_from(args: &Args) -> Result<Config, String> {
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

/// `--duration`: a positive number of seconds, fractions allowed.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| "must be a number of seconds (fractions allowed)".to_string())?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err("must be a positive number of seconds".to_string());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| "is too long".to_string())
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

    /// `--direct` is `--write-mode direct`; anything else with it is a
    /// usage error.
    #[test]
    fn write_mode_and_its_direct_shorthand() {
        let mode = |extra: &[&str]| parse(extra).write_mode();
        assert_eq!(mode(&[]), Ok(WriteMode::Pwrite));
        assert_eq!(mode(&["--write-mode", "mmap"]), Ok(WriteMode::Mmap));
        assert_eq!(mode(&["--write-mode=pwrite"]), Ok(WriteMode::Pwrite));
        assert_eq!(mode(&["--direct"]), Ok(WriteMode::Direct));
        assert_eq!(
            mode(&["--direct", "--write-mode", "direct"]),
            Ok(WriteMode::Direct)
        );
        assert_eq!(
            mode(&["--direct", "--write-mode", "mmap"]),
            Err("--direct is --write-mode direct: it cannot be used with --write-mode mmap".into())
        );
        assert!(parse_write_mode("buffered").is_err());
    }
}

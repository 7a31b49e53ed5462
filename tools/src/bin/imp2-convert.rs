//! `imp2-convert`: an imp2 log to pcapng or classic pcap.

use std::fs::File;
use std::io::{ErrorKind, IsTerminal};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use imp2_format::export::{
    ExportError, ExportOptions, ExportReport, Format, LinkType, export_threaded_selected,
    io_reason, places,
};
use imp2_format::filter::FilterLink;
use imp2_format::log::{OnDamage, ReadErrorKind};
use imp2_tools::selection::SelectionArgs;
use imp2_tools::{Failure, describe_read_error, open_log};

const TOOL: &str = "imp2-convert";

/// Output format, when the output name does not say.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    /// pcapng: interface names, direction, drop statistics, ns timestamps.
    Pcapng,
    /// Classic pcap, ns timestamps; keeps ifindex and direction (in the
    /// SLL2 header) but not interface names or drop statistics.
    Pcap,
}

/// Link-layer header type of the packets written.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum LinkTypeArg {
    /// LINKTYPE_LINUX_SLL2: a 20-byte header with ifindex and direction
    /// before each IP packet; read by tcpdump, tshark and Wireshark.
    Sll2,
    /// LINKTYPE_RAW: the IP packet alone, 20 bytes less per packet. Debian
    /// 12's tcpdump (libpcap 1.10.3) reads such a pcapng only when it has a
    /// single interface; tshark reads it always.
    Raw,
}

/// Convert an imp2 log to pcapng or classic pcap (LINKTYPE_LINUX_SLL2 by
/// default, nanosecond timestamps).
///
/// The format comes from --format, or else from the output's extension
/// (.pcapng or .pcap); `-o -` writes to stdout, pcapng unless --format says
/// otherwise. A damaged log is converted up to the damage, then the tool
/// exits 1; with --skip-damaged, every intact frame is converted.
///
/// A filter expression after the options (tcpdump's syntax), -i, --hook,
/// --from/--to and -c keep only some records; stderr then says how many
/// matched.
///
/// Exit status: 0 ok, 1 error (unreadable or damaged log, write error),
/// 2 usage. With --skip-damaged, damage alone does not fail: it is
/// reported as warnings.
#[derive(Debug, Parser)]
#[command(name = TOOL, version)]
struct Args {
    /// The log to convert.
    log: PathBuf,
    /// Output file, or `-` for stdout.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Output format (default: from the output's extension).
    #[arg(short, long, value_enum)]
    format: Option<FormatArg>,
    /// Flush the output file to disk (fsync) before exiting, and fail if
    /// that fails. Without it the output is left in the page cache, as
    /// editcap and tcpdump leave theirs: waiting for the disk takes longer
    /// than the conversion, and the log can always be converted again.
    #[arg(long)]
    sync: bool,
    /// Convert past damaged frames: go on from the next intact frame
    /// instead of stopping at the first damage (one bad sector should not
    /// cost the rest of a long capture). Each skipped stretch is reported,
    /// with the packets lost in it when the log's footer survived, on
    /// stderr and in the pcapng statistics of interface `any`; the exit
    /// status is then 0.
    #[arg(long)]
    skip_damaged: bool,
    /// Link-layer header type: sll2 (default) puts a 20-byte Linux cooked
    /// v2 header, with ifindex and direction, before each IP packet; raw
    /// writes the IP packet alone.
    #[arg(long, value_enum, value_name = "TYPE", default_value = "sll2")]
    linktype: LinkTypeArg,
    #[command(flatten)]
    select: SelectionArgs,
}

fn main() -> ExitCode {
    let args: Args = imp2_tools::cli::parse(TOOL);
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(TOOL),
    }
}

fn run(args: &Args) -> Result<(), Failure> {
    let to_stdout = args.output.as_os_str() == "-";
    let format = match (args.format, to_stdout) {
        (Some(FormatArg::Pcapng), _) => Format::Pcapng,
        (Some(FormatArg::Pcap), _) => Format::Pcap,
        (None, true) => Format::Pcapng,
        (None, false) => Format::from_path(&args.output).ok_or_else(|| {
            Failure::usage(format!(
                "{}: cannot tell the output format from the name; use a .pcapng or .pcap \
                 extension, or --format pcapng|pcap",
                args.output.display()
            ))
        })?,
    };
    // Only an explicit --format can disagree with the extension (`-` has
    // none). Not an error, the user asked for it; but whoever picks the
    // file up later (a script, a tool that reads only pcap) goes by the
    // name.
    if let Some(by_name) = Format::from_path(&args.output).filter(|&n| n != format) {
        eprintln!(
            "{TOOL}: warning: {}: writing {format} as --format says, but the extension says \
             {by_name}",
            args.output.display()
        );
    }
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(Failure::usage(format!(
            "refusing to write binary {format} to a terminal; redirect stdout or use -o FILE"
        )));
    }

    // Before anything is opened or created: a bad filter truncates nothing.
    // The expression sees packets as the output holds them.
    let selection = args.select.selection(match args.linktype {
        LinkTypeArg::Sll2 => FilterLink::Sll2,
        LinkTypeArg::Raw => FilterLink::Raw,
    })?;
    let reader = open_log(&args.log)?;
    let options = ExportOptions {
        on_damage: if args.skip_damaged {
            OnDamage::Skip
        } else {
            OnDamage::Stop
        },
        link_type: match args.linktype {
            LinkTypeArg::Sll2 => LinkType::Sll2,
            LinkTypeArg::Raw => LinkType::Raw,
        },
    };
    let report = if to_stdout {
        // The exporter hands over a few hundred KiB per write: to a file of
        // our own on a duplicate of fd 1 rather than through `Stdout`,
        // whose line buffering would search every piece for newlines.
        let stdout = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(File::from)
            .map_err(|e| Failure::runtime(format!("stdout: {}", io_reason(&e))))?;
        match export_threaded_selected(&reader, format, stdout, options, &selection) {
            Ok(report) => report,
            // The reader went away (`| head`, `tshark -c N`): it has what it
            // wanted; say nothing, like a tool killed by SIGPIPE.
            Err(ExportError::Io(e)) if e.kind() == ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(export_failure(&e, Path::new("stdout"), None)),
        }
    } else {
        refuse_same_file(&args.log, &args.output)?;
        let file = File::create(&args.output).map_err(|e| {
            Failure::runtime(format!(
                "{}: cannot create: {}",
                args.output.display(),
                io_reason(&e)
            ))
        })?;
        // No BufWriter: the exporter buffers itself, and writes its pieces
        // from a second thread, so that the kernel's copy into the page
        // cache overlaps with reading the log. No fsync unless asked (see
        // `--sync`): it made the conversion wait for the disk.
        let report = export_threaded_selected(&reader, format, &file, options, &selection);
        let report = report.and_then(|r| {
            // Only files and block devices have anything to flush: fsync
            // of a pipe or a character device (`-o /dev/null`) fails with
            // EINVAL.
            let kind = file.metadata()?.file_type();
            if args.sync && (kind.is_file() || kind.is_block_device()) {
                file.sync_all()?;
            }
            Ok(r)
        });
        report.map_err(|e| {
            let leftover = remove_partial(&args.output, &file);
            export_failure(&e, &args.output, leftover.as_deref())
        })?
    };
    if let Some(note) = pcap_note(format, &report) {
        eprintln!("{TOOL}: note: {note}");
    }
    if !selection.keeps_all() {
        eprintln!(
            "{TOOL}: {} of {} records matched",
            report.packets, report.examined
        );
    }
    if args.skip_damaged {
        warn_damage(&args.log, &report);
        return Ok(());
    }
    damage_failure(&args.log, &report)
}

/// Most skipped stretches listed one by one; the rest are summed up.
const SKIPPED_LISTED: usize = 10;

/// The damage a `--skip-damaged` conversion passed over, as warnings.
fn warn_damage(log: &Path, report: &ExportReport) {
    let log = log.display();
    for s in report.skipped.iter().take(SKIPPED_LISTED) {
        eprintln!(
            "{TOOL}: warning: {log}: skipped {} damaged bytes at byte {}: {}",
            s.len, s.offset, s.reason
        );
    }
    if report.skipped.len() > SKIPPED_LISTED {
        eprintln!(
            "{TOOL}: warning: {log}: ... and {} more damaged stretches",
            report.skipped.len() - SKIPPED_LISTED
        );
    }
    if !report.skipped.is_empty() {
        let lost = match report.lost_to_damage {
            Some(n) => format!("{n} packets were in them (by the log's footer)"),
            None => "how many packets were in them is unknown (the log's footer was lost)".into(),
        };
        eprintln!(
            "{TOOL}: warning: {log}: {} damaged bytes skipped in {}; {lost}; wrote {} \
             packets",
            report.skipped_bytes(),
            places(report.skipped.len()),
            report.packets
        );
    }
    if let Some(e) = &report.damage {
        eprintln!(
            "{TOOL}: warning: {log}: {}; wrote {} packets before it",
            describe_read_error(e),
            report.packets
        );
    }
}

/// What a user who asked for classic pcap may not know it dropped: the
/// run's losses, which only pcapng's statistics can carry. Said once, after
/// the conversion, and only when there were losses: the format itself was
/// asked for by name (`-f pcap` or the `.pcap` extension), and what else it
/// lacks (interface names; with `--linktype raw` ifindex and direction) is
/// in `--help`.
fn pcap_note(format: Format, report: &ExportReport) -> Option<String> {
    let lost = report.losses.records();
    (format == Format::Pcap && lost > 0).then(|| {
        format!(
            "classic pcap has no place for the {lost} {} this recording lost \
             (`imp2-info` lists them; pcapng keeps them in its interface statistics)",
            if lost == 1 { "packet" } else { "packets" }
        )
    })
}

/// The failure to report for a failed export; `leftover`, from
/// [`remove_partial`], says what became of the partial output.
fn export_failure(e: &ExportError, out: &Path, leftover: Option<&str>) -> Failure {
    let what = match e {
        ExportError::Io(io) => format!("{}: {}", out.display(), io_reason(io)),
        other => format!("{}: {other}", out.display()),
    };
    Failure::runtime(match leftover {
        Some(leftover) => format!("{what}; {leftover}"),
        None => what,
    })
}

/// Removes the partial output of a failed export, if it is the regular
/// file this run opened, and says what became of it; `None` when the output
/// is no file to clean up (`-o /dev/full`, a FIFO, a socket).
///
/// `-o` may name anything: removing whatever the name points to would
/// unlink a device node or a FIFO, or a symbolic link while the partial
/// data stays in its target. So the name must still be, just before the
/// removal, a regular file (lstat: a link is not followed) with the device
/// and inode of the file written.
fn remove_partial(out: &Path, file: &File) -> Option<String> {
    let kept = |why: String| Some(format!("the partial output was left in place: {why}"));
    let written = match file.metadata() {
        Ok(m) => m,
        Err(e) => return kept(format!("cannot stat it: {}", io_reason(&e))),
    };
    if !written.file_type().is_file() {
        return None;
    }
    match std::fs::symlink_metadata(out) {
        // Say where the partial data is: that is what the user looks for.
        Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(out) {
            Ok(target) => kept(format!(
                "{} is a symbolic link (to {})",
                out.display(),
                target.display()
            )),
            Err(_) => kept(format!("{} is a symbolic link", out.display())),
        },
        Ok(m)
            if m.file_type().is_file() && m.dev() == written.dev() && m.ino() == written.ino() =>
        {
            match std::fs::remove_file(out) {
                Ok(()) => Some("removed the partial output".into()),
                Err(e) => kept(format!("cannot remove it: {}", io_reason(&e))),
            }
        }
        // Renamed, removed or replaced by someone else meanwhile.
        _ => kept(format!("{} is no longer the file written", out.display())),
    }
}

fn damage_failure(log: &Path, report: &ExportReport) -> Result<(), Failure> {
    match &report.damage {
        None => Ok(()),
        Some(e) => {
            let hint = match e.kind {
                ReadErrorKind::BadChecksum { .. } | ReadErrorKind::BadFrame(_) => {
                    " (--skip-damaged converts the intact frames after it too)"
                }
                _ => "",
            };
            Err(Failure::runtime(format!(
                "{}: {}; wrote {} packets before it{hint}",
                log.display(),
                describe_read_error(e),
                report.packets
            )))
        }
    }
}

/// Creating the output truncates it: if it is the log itself, that would
/// destroy the log under the reader's map.
fn refuse_same_file(log: &Path, out: &Path) -> Result<(), Failure> {
    let (Ok(a), Ok(b)) = (std::fs::metadata(log), std::fs::metadata(out)) else {
        return Ok(());
    };
    if a.dev() == b.dev() && a.ino() == b.ino() {
        return Err(Failure::usage(format!(
            "{}: the output is the log itself",
            out.display()
        )));
    }
    Ok(())
}

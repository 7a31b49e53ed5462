//! `imp2-info`: what an imp2 log holds, and whether it is sound.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use imp2_format::filter::FilterLink;
use imp2_format::log::{OnDamage, trim_to_committed};
use imp2_tools::selection::SelectionArgs;
use imp2_tools::{EXIT_FAILURE, Failure, LogSummary, open_log};

const TOOL: &str = "imp2-info";

/// Summarise an imp2 log: header, records, time span, bytes, counts per
/// interface, hook, family and protocol, losses by cause, and integrity.
///
/// A filter expression after the options (tcpdump's syntax, as on the pcap
/// that imp2-convert writes), -i, --hook, --from/--to and -c make the
/// counts those of the matching records; the integrity check still reads
/// every record.
///
/// Exit status: 0 ok, 1 the log cannot be read (or, with --verify, has an
/// integrity problem), 2 usage.
#[derive(Debug, Parser)]
#[command(name = TOOL, version)]
struct Args {
    /// The log to read.
    log: PathBuf,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    json: bool,
    /// Only check integrity: print the verdict, and exit 1 on a damaged
    /// frame, a torn tail or a footer that disagrees with the records.
    #[arg(long)]
    verify: bool,
    /// Read past damaged frames: go on from the next intact frame instead
    /// of stopping at the first damage, and list every damaged stretch. The
    /// counts then cover every intact frame. (--verify still fails on
    /// damage.)
    #[arg(long)]
    skip_damaged: bool,
    /// Cut a log left by a recorder that died (kill -9, a crash) back to its
    /// committed length, giving back the disk space the recorder had
    /// reserved ahead; every reader reads the same records before and
    /// after. Refused while a recorder is writing the log.
    #[arg(long, conflicts_with_all = ["json", "verify", "skip_damaged"])]
    trim: bool,
    #[command(flatten)]
    select: SelectionArgs,
}

fn main() -> ExitCode {
    imp2_tools::cli::default_sigpipe();
    let args: Args = imp2_tools::cli::parse(TOOL);
    match run(&args) {
        Ok(code) => code,
        Err(f) => imp2_tools::cli::report(TOOL, &f, args.json),
    }
}

fn run(args: &Args) -> Result<ExitCode, Failure> {
    // The expression sees records as `imp2-convert` writes them by default
    // (SLL2), so that it selects what `tcpdump -r` on that export selects.
    let selection = args.select.selection(FilterLink::Sll2)?;
    let reader = open_log(&args.log)?;
    if args.trim {
        drop(reader);
        return trim(&args.log);
    }
    let on_damage = if args.skip_damaged {
        OnDamage::Skip
    } else {
        OnDamage::Stop
    };
    let summary = LogSummary::of_selected(&reader, on_damage, &selection);
    if args.json {
        let json = serde_json::to_string_pretty(&summary)
            .map_err(|e| Failure::runtime(format!("encoding JSON: {e}")))?;
        println!("{json}");
    }
    if args.verify {
        return Ok(match summary.integrity.problem() {
            Some(problem) => {
                eprintln!("{TOOL}: {}: {problem}", args.log.display());
                ExitCode::from(EXIT_FAILURE)
            }
            None => {
                if !args.json {
                    println!(
                        "{}: ok, {} records, {}",
                        args.log.display(),
                        // Verification reads every record, filter or not.
                        summary
                            .filter
                            .as_ref()
                            .map_or(summary.records, |f| f.examined),
                        summary.integrity.describe()
                    );
                }
                ExitCode::SUCCESS
            }
        });
    }
    if !args.json {
        print!("{}", summary.to_text(&args.log));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--trim`: cuts the log to its committed length and says what it did.
fn trim(log: &std::path::Path) -> Result<ExitCode, Failure> {
    let t = trim_to_committed(log)
        .map_err(|e| Failure::runtime(format!("{}: cannot trim: {e}", log.display())))?;
    if t.from == t.to {
        println!(
            "{}: nothing to trim: no bytes past the committed length ({} bytes)",
            log.display(),
            t.to
        );
    } else {
        println!(
            "{}: cut {} uncommitted bytes; the log is now {} bytes",
            log.display(),
            t.from - t.to,
            t.to
        );
    }
    Ok(ExitCode::SUCCESS)
}

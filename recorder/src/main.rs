//! imp2-record: receives batched capture records from the imp2 kernel
//! module (or a stand-in producer) over netlink and appends them to a
//! compact log; `imp2-convert` turns the log into pcapng or pcap.
//!
//! Exit status: 0 the run ended normally (signal, -c or --duration) and the
//! log is complete; 1 a runtime error (the log, if any, holds everything
//! committed before it); 2 a usage error. Every error is one line,
//! `imp2-record: what: why`; with `--json` it is also a JSON object on
//! stdout.

mod cache;
mod capture_filter;
mod cli;
mod interfaces;
mod log_sink;
mod progress;
mod receive;
mod report;
mod session;
mod signals;
mod source;
mod sys;

use std::process::ExitCode;

use imp2_tools::Failure;

use capture_filter::CaptureFilter;
use cli::{Args, SourceArg, TOOL, config_from};
use imp2_format::wire::Register;
use source::{imp2, nflog};

fn main() -> ExitCode {
    let args = Args::parse_from_args(std::env::args_os());
    match run(&args) {
        Ok(code) => code,
        Err(failure) => imp2_tools::cli::report(TOOL, &failure, args.json),
    }
}

fn run(args: &Args) -> Result<ExitCode, Failure> {
    let config = config_from(args).map_err(Failure::usage)?;
    // Compiled and resolved before anything is registered or created.
    let capture = args.filter.resolve()?;
    if args.filter.dump {
        imp2_tools::cli::default_sigpipe();
        print!("{}", capture.dump());
        return Ok(ExitCode::SUCCESS);
    }
    let output = args
        .output
        .clone()
        .ok_or_else(|| Failure::usage("-o FILE is required"))?;
    if output.as_os_str() == "-" {
        // The log is written in place (its header is rewritten at every
        // commit), so it cannot be a pipe.
        return Err(Failure::usage(
            "-o -: the log must be a file; convert it afterwards with imp2-convert",
        ));
    }
    let opts = session::Options {
        output,
        filter: capture.describe(),
        count: args.count,
        duration: args.duration,
        io: args.io,
        write_mode: args.write_mode().map_err(Failure::usage)?,
        progress: !args.quiet,
    };
    let quiet = args.quiet;
    // Every line printed during the run goes through the status line's
    // `message`, so that none is glued onto it.
    let mut notice = |line: String| {
        if !quiet {
            progress::message(&line);
        }
    };
    let mut source: Box<dyn source::Source> = match args.source {
        SourceArg::Nflog(group) => Box::new(open_nflog(
            args,
            group,
            config.families,
            &capture,
            &mut notice,
        )?),
        SourceArg::Imp2 => {
            let register = Register::new(config, capture.for_register());
            let source = imp2::Imp2Source::open(args.unit, args.peer, args.rcvbuf, register)
                .map_err(|e| Failure::runtime(e.to_string()))?;
            let sock = source.socket();
            if sock.rcvbuf_capped {
                notice(rcvbuf_capped_notice(sock.rcvbuf, args.rcvbuf));
            }
            Box::new(source)
        }
    };
    let summary = session::run(&opts, source.as_mut(), &mut notice)
        .map_err(|e| Failure::runtime(e.to_string()))?;
    use std::io::Write as _;
    if !args.quiet {
        let _ = write!(std::io::stderr(), "{}", report::human(&summary));
    }
    if args.json {
        let _ = writeln!(std::io::stdout(), "{}", report::json(&summary));
    }
    if let Some(e) = &summary.write_error {
        // The JSON summary above carries it as `write_error`.
        let _ = writeln!(
            std::io::stderr(),
            "{TOOL}: {}",
            imp2_tools::cli::without_os_error_codes(e)
        );
        return Ok(ExitCode::from(imp2_tools::EXIT_FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}

/// What a receive buffer capped by `net.core.rmem_max` means.
fn rcvbuf_capped_notice(granted: usize, asked: usize) -> String {
    format!(
        "SO_RCVBUFFORCE needs CAP_NET_ADMIN; fell back to SO_RCVBUF: the receive buffer is \
         {granted} bytes (capped by net.core.rmem_max), not {asked}"
    )
}

/// The NFLOG source for `--source nflog:GROUP`.
fn open_nflog(
    args: &Args,
    group: u16,
    families: u32,
    capture: &CaptureFilter,
    notice: &mut dyn FnMut(String),
) -> Result<nflog::NflogSource, Failure> {
    if !args.proto.is_empty() || args.hooks != ["pre", "out"] {
        return Err(Failure::usage(
            "--hooks and --proto select packets for the imp2 module; with --source nflog the \
             NFLOG rule selects them",
        ));
    }
    let settings = nflog::Settings {
        group,
        snaplen: args.snaplen,
        bufsize: args.nflog_bufsize,
        qthresh: args.nflog_qthresh,
        flush_ms: args.nflog_flush_ms,
        rcvbuf: args.rcvbuf,
        families,
        program: capture.program().cloned(),
        ifindexes: capture.ifindexes(),
    };
    settings
        .validate()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let source = nflog::NflogSource::open(settings).map_err(|e| Failure::runtime(e.to_string()))?;
    if source.rcvbuf_capped() {
        notice(rcvbuf_capped_notice(source.rcvbuf(), args.rcvbuf));
    }
    if let Some(line) = args.nflog_snaplen_notice() {
        notice(line);
    }
    Ok(source)
}

//! Command lines of the imp2 tools: every error in one style.
//!
//! Each tool reports a failure as one line on stderr, `TOOL: what: why`,
//! and exits 1 (runtime) or 2 (usage). clap's own usage errors come as
//! several lines with an `error:` prefix, a usage block and a hint; here
//! they are folded into that one line. A command line that asks for
//! `--json` also gets the failure as a JSON object on stdout, so that a
//! script reading stdout learns why there is no summary.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::{EXIT_USAGE, Failure};

/// Parses the process's command line into `T`. `--help` and `--version`
/// print and exit 0; a usage error is reported in the tools' style (see
/// [`report`]) and exits 2.
pub fn parse<T: CommandFactory + FromArgMatches>(tool: &str) -> T {
    parse_from::<T>(tool, std::env::args_os().collect()).0
}

/// [`parse`] over `argv`, also returning clap's matches (which tell, for
/// instance, whether an option was given or defaulted).
pub fn parse_from<T: CommandFactory + FromArgMatches>(
    tool: &str,
    argv: Vec<OsString>,
) -> (T, ArgMatches) {
    let json = wants_json(&argv);
    let parsed = T::command()
        .try_get_matches_from(&argv)
        .and_then(|m| T::from_arg_matches(&m).map(|t| (t, m)));
    match parsed {
        Ok(pair) => pair,
        Err(e) if !is_usage_error(&e) => e.exit(),
        Err(e) => {
            report(tool, &Failure::usage(usage_message(&e)), json);
            std::process::exit(i32::from(EXIT_USAGE));
        }
    }
}

/// Whether a command line asks for JSON output (`--json` before any `--`).
pub fn wants_json(argv: &[OsString]) -> bool {
    argv.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// Prints `failure` as `tool: message` on stderr and, with `json`, as
/// `{"error": message, "exit_code": N}` on stdout; returns the exit code.
pub fn report(tool: &str, failure: &Failure, json: bool) -> ExitCode {
    use std::io::Write as _;
    let message = without_os_error_codes(&failure.message);
    // Neither write may panic: stderr or stdout may be closed.
    let _ = writeln!(std::io::stderr(), "{tool}: {message}");
    if json {
        let object = serde_json::json!({
            "error": message,
            "exit_code": failure.code,
        });
        let _ = writeln!(std::io::stdout(), "{object}");
    }
    ExitCode::from(failure.code)
}

/// `message` without Rust's ` (os error N)` after an OS reason: the reason
/// in words is what a user reads (`Is a directory`, not `Is a directory (os
/// error 21)`). Errors are worded without the code where they are made;
/// this catches any that still carry it.
pub fn without_os_error_codes(message: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(MARK) {
        let after = &rest[i + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            out.push_str(&rest[..i]);
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..i + MARK.len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Whether `e` is a mistake on the command line (rather than help or
/// version output, which clap prints itself).
fn is_usage_error(e: &clap::Error) -> bool {
    !matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    )
}

/// clap's error as one line without its `error:` prefix, usage block and
/// `--help` hint: `--count -1: must be at least 1`, `unexpected argument
/// '--frob' found (tip: ...)`, `the following required arguments were not
/// provided: --output <FILE>`.
pub fn usage_message(e: &clap::Error) -> String {
    if e.kind() == ErrorKind::ValueValidation
        && let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
            e.get(ContextKind::InvalidArg),
            e.get(ContextKind::InvalidValue),
        )
        && let Some(why) = std::error::Error::source(e)
    {
        // `--count <N>` names the option; the value comes after it.
        let option = arg.split_once(' ').map_or(arg.as_str(), |(name, _)| name);
        return format!("{option} {value}: {why}");
    }
    let rendered = e.render().to_string();
    let mut text = rendered.trim_start();
    text = text.strip_prefix("error:").unwrap_or(text);
    // What follows is the usage block and the hint to run --help.
    for end in ["\nUsage:", "\nFor more information"] {
        if let Some(i) = text.find(end) {
            text = &text[..i];
        }
    }
    let mut line = String::new();
    for part in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.is_empty() {
            line.push_str(part);
        } else if part.starts_with("tip:") {
            line.push_str(&format!(" ({part})"));
        } else {
            line.push(' ');
            line.push_str(part);
        }
    }
    line
}

/// A count given on the command line: a whole number of at least 1, said
/// in words when it is not (clap's range check says `0 is not in
/// 1..18446744073709551615`).
pub fn count_at_least_one<T: TryFrom<u64>>(s: &str) -> Result<T, String> {
    let n: i128 = s
        .trim()
        .parse()
        .map_err(|_| "must be a whole number of at least 1".to_string())?;
    if n < 1 {
        return Err("must be at least 1".to_string());
    }
    u64::try_from(n)
        .ok()
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| "is too large".to_string())
}

/// Lets a closed stdout (`imp2-info --json | head -1`) end the process
/// quietly by SIGPIPE, as it ends `cat` or `tcpdump`, instead of the Rust
/// runtime's default of ignoring SIGPIPE, which turns every later `print!`
/// into a panic. For tools whose output to stdout is text.
pub fn default_sigpipe() {
    // SAFETY: restores the default disposition of one signal at start-up,
    // before any thread is spawned; no handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    #[command(name = "t")]
    struct Args {
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: String,
        #[arg(short = 'c', long = "count", value_name = "N", allow_negative_numbers = true,
              value_parser = count_at_least_one::<u64>)]
        count: Option<u64>,
        #[arg(long)]
        json: bool,
    }

    fn message(argv: &[&str]) -> String {
        let e = Args::try_parse_from(argv).expect_err("a usage error");
        usage_message(&e)
    }

    #[test]
    fn usage_errors_are_one_line_without_clap_decoration() {
        assert_eq!(
            message(&["t", "-o", "x", "-c", "-1"]),
            "--count -1: must be at least 1"
        );
        assert_eq!(
            message(&["t", "-o", "x", "-c", "0"]),
            "--count 0: must be at least 1"
        );
        assert_eq!(
            message(&["t", "-o", "x", "-c", "many"]),
            "--count many: must be a whole number of at least 1"
        );
        assert_eq!(
            message(&["t", "-o", "x", "-c", "18446744073709551616"]),
            "--count 18446744073709551616: is too large"
        );
        let missing = message(&["t"]);
        assert_eq!(
            missing,
            "the following required arguments were not provided: --output <FILE>"
        );
        let unknown = message(&["t", "-o", "x", "--jsn"]);
        assert!(
            unknown.starts_with("unexpected argument '--jsn' found (tip:"),
            "{unknown}"
        );
        for m in [missing, unknown] {
            assert!(!m.contains('\n') && !m.contains("error:") && !m.contains("Usage"));
        }
    }

    #[test]
    fn os_error_codes_are_dropped_from_messages() {
        let e = std::io::Error::from_raw_os_error(libc::EISDIR);
        assert_eq!(
            without_os_error_codes(&format!("creating /tmp: {e}; again: {e}")),
            "creating /tmp: Is a directory; again: Is a directory"
        );
        assert_eq!(
            without_os_error_codes("a (os error x) b (os error 2"),
            "a (os error x) b (os error 2"
        );
    }

    #[test]
    fn json_is_wanted_only_before_a_double_dash() {
        let argv = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(wants_json(&argv(&["t", "-o", "x", "--json"])));
        assert!(!wants_json(&argv(&["t", "-o", "x"])));
        assert!(!wants_json(&argv(&["--json"])));
        assert!(!wants_json(&argv(&["t", "--", "--json"])));
    }
}

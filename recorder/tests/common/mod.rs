//! Running the real binaries against each other over real netlink sockets.

// Each test crate uses part of this module.
#![allow(dead_code, unused_imports)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub use imp2_testkit::SmallTmpfs;
pub use imp2_testkit::harness::{Loadgen, Output, bin, signal, wait};

/// [`wait`], failing the test when the child overstays `timeout`.
pub fn wait_output(child: Child, timeout: Duration, what: &str) -> Output {
    let out = wait(child, timeout);
    assert!(
        !out.timed_out,
        "{what} did not finish within {timeout:?}: {}",
        out.stderr
    );
    out
}

/// Starts `imp2-record --unit 2 --peer PORT -o LOG --json -q ARGS`.
pub fn start_recorder(port: u32, log: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(bin("imp2-record"));
    cmd.args([
        "--unit",
        "2",
        "--peer",
        &port.to_string(),
        "--json",
        "-q",
        "-o",
    ])
    .arg(log)
    .args(args)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("cannot start imp2-record")
}

/// Parses the recorder's JSON summary.
pub fn recorder_json(out: &Output) -> Value {
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "recorder JSON: {e}\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        )
    })
}

/// Runs a tool to completion (bounded), returning its output.
pub fn run_tool(name: &str, args: &[&str]) -> Output {
    let child = Command::new(bin(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    wait_output(child, Duration::from_secs(120), name)
}

/// Digest of every record in a log, read directly with the library.
pub fn log_digest(path: &Path) -> (imp2_testkit::RecordDigest, Option<String>) {
    let reader = imp2_format::log::LogReader::open(path).expect("log opens");
    let mut digest = imp2_testkit::RecordDigest::default();
    let mut error = None;
    for event in reader.events() {
        match event {
            Ok(imp2_format::log::LogEvent::Record(r)) => digest.add(&r),
            Ok(_) => {}
            Err(e) => error = Some(e.to_string()),
        }
    }
    (digest, error)
}

/// The stop reason a closed log's footer records (`None`: not recorded),
/// read directly with the library; panics when the log has no footer.
pub fn log_stop(path: &Path) -> Option<imp2_format::log::StopReason> {
    let reader = imp2_format::log::LogReader::open(path).expect("log opens");
    reader
        .events()
        .find_map(|event| match event {
            Ok(imp2_format::log::LogEvent::Footer(f)) => Some(f.stop),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{} has no footer", path.display()))
}

/// Checks that the recorder's JSON summary and the log's footer both say
/// the run was stopped by `cause` with `detail`.
pub fn assert_stopped(
    summary: &Value,
    log: &Path,
    cause: imp2_format::log::StopCause,
    detail: &str,
) {
    let want = imp2_format::log::StopReason::new(cause, detail);
    assert_eq!(log_stop(log), Some(want), "the log's footer");
    assert_eq!(summary["stop"]["cause"], cause.name(), "{summary}");
    assert_eq!(summary["stop"]["code"], cause.code(), "{summary}");
    assert_eq!(summary["stop"]["detail"], detail, "{summary}");
}

/// `u64` field of a JSON object.
pub fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer `{key}` in {v}"))
}

//! What imp2-record says, as a user on a terminal sees it: the status line
//! (through a real pseudo-terminal), notices printed while it shows, rates
//! at ordinary traffic, the end of a run whose producer went away, and
//! errors in one style.

mod common;

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(120);

/// Runs imp2-loadgen and imp2-record one at a time (they share netlink
/// unit 2 and the CPU).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pseudo-terminal: the recorder's stderr is its slave side, the test
/// reads what a terminal would show from the master side.
fn open_pty() -> (File, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors into the two ints; the name,
    // termios and window size pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// A paced producer that sends 10,000 records at 4,000 a second and exits,
/// recorded with the status line on a pseudo-terminal. Checks the three
/// things a user saw go wrong: a notice printed while the status line
/// shows gets a line of its own (it was glued onto the status line), the
/// rate reads in thousands of packets a second (it read `0.00 M
/// records/s`), and a producer that is gone is said once and ends the run
/// (it ran on at 0 records/s until Ctrl-C, then printed two messages).
#[test]
fn status_line_notices_rates_and_a_vanished_producer_on_a_terminal() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let n = 10_000u64;
    let loadgen = Loadgen::start(
        dir.path(),
        &["-n", &n.to_string(), "--rate", "4000", "--linger", "0"],
    );
    let (mut master, slave) = open_pty();
    let recorder = Command::new(bin("imp2-record"))
        .args(["--unit", "2", "--peer", &loadgen.port.to_string()])
        .args(["--flush-ms", "10", "--json", "-o"])
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .expect("cannot start imp2-record");
    // The terminal's text until the recorder (the slave's last holder)
    // closes it: then reading the master fails with EIO.
    let screen = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(k @ 1..) = master.read(&mut buf) {
            bytes.extend_from_slice(&buf[..k]);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let generated = loadgen.finish(LONG);
    // No signal: the recorder must notice on its own that the producer is
    // gone.
    let out = wait_output(recorder, Duration::from_secs(30), "imp2-record");
    let screen = screen.join().unwrap();
    assert!(out.ok, "imp2-record failed: {screen}");
    assert_eq!(u(&generated, "generated"), n);

    // The status line was on the screen, in packets a second.
    let notice = "imp2-record: the producer is gone";
    let at = screen
        .find(notice)
        .unwrap_or_else(|| panic!("no notice that the producer is gone: {screen:?}"));
    let before = &screen[..at];
    assert!(
        before.contains("k pkt/s") && before.contains(" packets "),
        "a status line in thousands of packets a second before the notice: {screen:?}"
    );
    assert!(!screen.contains("M records/s"), "{screen:?}");
    // The notice starts on an erased line and ends its own line (the
    // terminal turns "\n" into "\r\n").
    assert!(
        before.ends_with("\r\x1b[K"),
        "the status line is erased before the notice: {screen:?}"
    );
    let line_end = screen[at..].find('\r').map(|i| at + i).unwrap();
    assert!(
        screen[line_end..].starts_with("\r\n"),
        "the notice ends its line: {screen:?}"
    );
    // Said once as a notice; the summary's "stopped by" names it again as
    // the reason the run ended.
    assert_eq!(screen.matches(notice).count(), 1, "said once: {screen:?}");
    assert!(
        screen.contains("stopped by receive error: the producer is gone"),
        "{screen:?}"
    );
    assert!(
        !screen.contains("did not acknowledge") && !screen.contains("could not stop"),
        "nothing more about the producer at the end: {screen:?}"
    );
    // The summary counts in words and units too.
    assert!(
        screen.contains(&format!("imp2-record: {n} packets (")),
        "{screen:?}"
    );
    assert!(screen.contains(" pkt/s, "), "{screen:?}");

    let summary = recorder_json(&out);
    assert_eq!(u(&summary, "records"), n, "{summary}");
    assert_eq!(summary["producer_gone"], true, "{summary}");
    assert_eq!(summary["stop"]["cause"], "receive_error", "{summary}");
    assert_eq!(u(&summary["losses"], "records_lost"), 0, "{summary}");
}

/// Runs `imp2-record ARGS` to its end.
fn record(args: &[&str]) -> Output {
    let child = Command::new(bin("imp2-record"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start imp2-record");
    wait_output(child, LONG, "imp2-record")
}

/// One line on stderr, `imp2-record: what: why`, with no trace of clap's
/// or Rust's own formats.
fn assert_one_line(out: &Output, code: i32, line: &str) {
    assert_eq!(out.code, Some(code), "{}", out.stderr);
    assert_eq!(out.stderr, format!("imp2-record: {line}\n"));
}

#[test]
fn errors_are_one_line_in_one_style_with_bounds_in_words() {
    assert_one_line(
        &record(&["-o", "x.log", "-c", "-1"]),
        2,
        "--count -1: must be at least 1",
    );
    assert_one_line(
        &record(&["-o", "x.log", "-c", "0"]),
        2,
        "--count 0: must be at least 1",
    );
    assert_one_line(
        &record(&["-o", "x.log", "--duration", "-1"]),
        2,
        "--duration -1: must be a positive number of seconds",
    );
    assert_one_line(
        &record(&["-o", "x.log", "--nflog-qthresh", "0"]),
        2,
        "--nflog-qthresh 0: must be at least 1",
    );
    assert_one_line(
        &record(&["-c", "5"]),
        2,
        "the following required arguments were not provided: --output <FILE>",
    );
    let unknown = record(&["-o", "x.log", "--frob"]);
    assert_eq!(unknown.code, Some(2));
    assert!(
        unknown
            .stderr
            .starts_with("imp2-record: unexpected argument '--frob' found"),
        "{}",
        unknown.stderr
    );
    assert_eq!(unknown.stderr.lines().count(), 1, "{}", unknown.stderr);
    assert!(!unknown.stderr.contains("error:"), "{}", unknown.stderr);
}

/// With `--json`, a failed run still prints one JSON object on stdout,
/// with the error and the exit code: for usage errors, and for errors of
/// the run itself (here a directory given as the log, whose OS reason
/// comes in words, without `(os error 21)`).
#[test]
fn with_json_a_failure_is_a_json_object_too() {
    let usage = record(&["-o", "x.log", "--json", "--duration", "0"]);
    assert_eq!(usage.code, Some(2));
    let v: serde_json::Value = serde_json::from_str(usage.stdout.trim()).unwrap();
    assert_eq!(
        v["error"],
        "--duration 0: must be a positive number of seconds"
    );
    assert_eq!(v["exit_code"], 2);
    let conflict = record(&["-o", "x.log", "--direct", "--write-mode", "mmap"]);
    assert_eq!(conflict.code, Some(2));
    assert_eq!(
        conflict.stderr,
        "imp2-record: --direct is --write-mode direct: it cannot be used with --write-mode \
         mmap\n"
    );

    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let loadgen = Loadgen::start(dir.path(), &["-n", "1000", "--linger", "0"]);
    let out = wait_output(
        start_recorder(loadgen.port, dir.path(), &[], &[]),
        LONG,
        "imp2-record",
    );
    let _ = wait(loadgen.child, LONG);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.starts_with("imp2-record: "), "{}", out.stderr);
    assert!(out.stderr.contains("Is a directory"), "{}", out.stderr);
    assert!(!out.stderr.contains("os error"), "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: stdout {:?}", out.stdout));
    assert_eq!(v["exit_code"], 1);
    assert_eq!(
        format!("imp2-record: {}\n", v["error"].as_str().unwrap()),
        out.stderr
    );
}

//! imp2-record against imp2-loadgen (the module's stand-in) over real
//! NETLINK_USERSOCK sockets and real io_uring on this kernel.
//!
//! Every run is bounded in records and time. Tests run one at a time (a
//! mutex) because they measure loss under load on a 2-core machine.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::*;
use imp2_format::log::StopCause;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const LONG: Duration = Duration::from_secs(120);

/// Losses other than the ones named must be zero.
fn assert_only_losses(summary: &serde_json::Value, allowed: &[&str]) {
    for (k, v) in summary["losses"].as_object().unwrap() {
        if k != "records_lost" && !allowed.contains(&k.as_str()) {
            assert_eq!(v.as_u64(), Some(0), "unexpected loss `{k}` in {summary}");
        }
    }
}

fn million(env: &[(&str, &str)], extra: &[&str]) -> (serde_json::Value, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let n = 1_000_000u64;
    let loadgen = Loadgen::start(
        dir.path(),
        &["-n", &n.to_string(), "--cpus", "2", "--size", "64,128,200"],
    );
    // The producer runs flat out, faster than any consumer on this shared
    // machine may drain: the receive buffer holds the whole burst, so what
    // is tested is exactness at full producer speed (loss-free throughput is
    // measured by the benchmarks, not here).
    let mut args = vec!["-c", "1000000", "--rcvbuf", "512M"];
    args.extend_from_slice(extra);
    let recorder = start_recorder(loadgen.port, &log, &args, env);
    let out = wait_output(recorder, LONG, "imp2-record");
    assert!(out.ok, "imp2-record failed: {}", out.stderr);
    let summary = recorder_json(&out);
    let generated = loadgen.finish(LONG);
    assert_eq!(u(&generated, "generated"), n);
    assert_eq!(u(&summary, "records"), n, "recorded == generated");
    assert_eq!(u(&summary["losses"], "records_lost"), 0);
    assert_only_losses(&summary, &[]);
    let (digest, error) = log_digest(&log);
    assert_eq!(error, None);
    assert_eq!(
        digest.to_hex(),
        generated["digest"].as_str().unwrap(),
        "log content digest"
    );
    let verify = run_tool("imp2-info", &["--verify", log.to_str().unwrap()]);
    assert!(
        verify.ok,
        "imp2-info --verify: {}{}",
        verify.stdout, verify.stderr
    );
    assert_stopped(&summary, &log, StopCause::Count, "1000000");
    assert_eq!(summary["stopped_by"], "count 1000000 reached");
    (summary, generated)
}

#[test]
fn a_million_records_at_full_speed_arrive_exactly() {
    let _g = serial();
    let (summary, _) = million(&[], &[]);
    assert!(
        summary["io"].as_str().unwrap().starts_with("io_uring"),
        "{summary}"
    );
    assert_eq!(u(&summary, "producer_cpus"), 2);
}

#[test]
fn direct_io_gives_the_same_result() {
    let _g = serial();
    let (summary, _) = million(&[], &["--direct"]);
    assert_eq!(summary["write"], "direct");
}

/// The memory-mapped writer through the real recorder: every record sent
/// is in the log, which verifies (`million` checks both).
#[test]
fn mmap_writes_give_the_same_result() {
    let _g = serial();
    let (summary, _) = million(&[], &["--write-mode", "mmap"]);
    assert_eq!(summary["write"], "mmap");
}

#[test]
fn direct_io_writes_a_slow_trickle_within_a_fraction_of_a_second() {
    let _g = serial();
    // 2000 records/s is about 200 KB/s: a MiB buffer would take 5 s to fill,
    // so what readers see after 1.5 s was written by the periodic flush.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let loadgen = Loadgen::start(
        dir.path(),
        &["-n", "100000", "--rate", "2000", "--linger", "0"],
    );
    let recorder = start_recorder(loadgen.port, &log, &["--flush-ms", "10", "--direct"], &[]);
    std::thread::sleep(Duration::from_millis(1500));
    let seen = {
        let reader = imp2_format::log::LogReader::open(&log).unwrap();
        reader
            .events()
            .filter(|e| matches!(e, Ok(imp2_format::log::LogEvent::Record(_))))
            .count()
    };
    signal(&recorder, libc::SIGINT);
    let out = wait_output(recorder, LONG, "imp2-record");
    let _ = wait_output(loadgen.child, LONG, "imp2-loadgen");
    assert!(out.ok, "imp2-record failed: {}", out.stderr);
    assert!(seen >= 1000, "only {seen} records readable after 1.5 s");
    assert_eq!(recorder_json(&out)["write"], "direct");
}

#[test]
fn direct_io_without_file_system_support_is_one_clear_line() {
    // ramfs has no direct I/O: the recorder must say so before registering
    // anywhere, and leave no file behind.
    let dir = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "ramfs", "ramfs"])
        .arg(dir.path())
        .status()
        .expect("mount");
    assert!(mounted.success(), "this test mounts a ramfs and needs root");
    let log = dir.path().join("run.log");
    // No producer: creating the log comes first and fails.
    let recorder = start_recorder(1, &log, &["--direct"], &[]);
    let out = wait_output(recorder, LONG, "imp2-record");
    let exists = log.exists();
    let _ = std::process::Command::new("umount")
        .arg(dir.path())
        .status();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(lines[0].contains("direct I/O"), "{}", out.stderr);
    assert!(lines[0].contains("run without --direct"), "{}", out.stderr);
    assert!(!exists, "a header-only log was left behind");
}

#[test]
fn without_io_uring_plain_recv_gives_the_same_result() {
    let _g = serial();
    let (summary, _) = million(&[("IMP2_DISABLE_IO_URING", "1")], &[]);
    assert_eq!(summary["io"], "recv");
    let (summary, _) = million(&[], &["--io", "recv"]);
    assert_eq!(summary["io"], "recv");
}

#[test]
fn overload_while_stopped_is_accounted_exactly() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    // Enough records that the stream outlasts the 2 s stop; a small receive
    // buffer so the stop overflows it.
    let loadgen = Loadgen::start(
        dir.path(),
        &[
            "-n", "3000000", "--rate", "1000000", "--cpus", "2", "--linger", "0",
        ],
    );
    let recorder = start_recorder(loadgen.port, &log, &["--rcvbuf", "256K"], &[]);
    std::thread::sleep(Duration::from_millis(500));
    signal(&recorder, libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(2));
    signal(&recorder, libc::SIGCONT);
    let generated = loadgen.finish(LONG);
    signal(&recorder, libc::SIGINT);
    let out = wait_output(recorder, LONG, "imp2-record");
    assert!(out.ok, "imp2-record failed: {}", out.stderr);
    let summary = recorder_json(&out);
    let dropped = u(&generated, "dropped");
    assert!(
        dropped > 0,
        "the stop must overflow the buffer: {generated}"
    );
    let recorded = u(&summary, "records");
    let lost = u(&summary["losses"], "records_lost");
    assert_eq!(
        recorded + lost,
        u(&generated, "generated"),
        "recorded + lost == generated"
    );
    assert_eq!(u(&summary["losses"], "kernel_rcvbuf"), dropped);
    assert_only_losses(&summary, &["kernel_rcvbuf"]);
    let (digest, error) = log_digest(&log);
    assert_eq!(error, None);
    assert_eq!(digest.to_hex(), generated["digest"].as_str().unwrap());

    // The drops show in imp2-info and in the pcapng interface statistics.
    let info = run_tool("imp2-info", &["--json", log.to_str().unwrap()]);
    assert!(info.ok, "{}", info.stderr);
    let info: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(u(&info["losses"], "records_lost"), dropped, "{info}");
    let pcapng = dir.path().join("run.pcapng");
    let conv = run_tool(
        "imp2-convert",
        &[log.to_str().unwrap(), "-o", pcapng.to_str().unwrap()],
    );
    assert!(conv.ok, "{}", conv.stderr);
    assert_eq!(isb_osdrop_total(&std::fs::read(&pcapng).unwrap()), dropped);
}

/// Sum of `isb_osdrop` over every Interface Statistics Block of a
/// little-endian pcapng file (an independent reader, not the exporter's).
fn isb_osdrop_total(file: &[u8]) -> u64 {
    let mut total = 0;
    let mut pos = 0;
    while pos + 12 <= file.len() {
        let block_type = u32::from_le_bytes(file[pos..pos + 4].try_into().unwrap());
        let len = u32::from_le_bytes(file[pos + 4..pos + 8].try_into().unwrap()) as usize;
        assert!(
            len >= 12 && pos + len <= file.len(),
            "bad pcapng block at {pos}"
        );
        if block_type == 5 {
            // ISB: interface id (4), timestamp (8), then options.
            let mut o = pos + 8 + 12;
            while o + 4 <= pos + len - 4 {
                let code = u16::from_le_bytes(file[o..o + 2].try_into().unwrap());
                let olen = u16::from_le_bytes(file[o + 2..o + 4].try_into().unwrap()) as usize;
                if code == 0 {
                    break;
                }
                if code == 7 && olen == 8 {
                    // isb_osdrop
                    total += u64::from_le_bytes(file[o + 4..o + 12].try_into().unwrap());
                }
                o += 4 + olen.next_multiple_of(4);
            }
        }
        pos += len;
    }
    total
}

#[test]
fn hostile_peer_is_counted_and_valid_records_kept() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let loadgen = Loadgen::start(
        dir.path(),
        &[
            "-n",
            "200000",
            "--hostile-every",
            "3",
            "--linger",
            "0",
            "--rate",
            "2000000",
        ],
    );
    let recorder = start_recorder(loadgen.port, &log, &[], &[]);
    let generated = loadgen.finish(LONG);
    signal(&recorder, libc::SIGINT);
    let out = wait_output(recorder, LONG, "imp2-record");
    assert!(out.ok, "imp2-record failed: {}", out.stderr);
    let summary = recorder_json(&out);
    let hostile = u(&generated, "hostile_datagrams");
    assert!(
        hostile >= 8,
        "every kind of hostile datagram sent: {generated}"
    );
    assert_eq!(
        u(&summary["losses"], "malformed_messages"),
        hostile,
        "{summary}"
    );
    assert_eq!(
        u(&summary, "records"),
        u(&generated, "sent"),
        "valid records kept"
    );
    assert_only_losses(&summary, &["malformed_messages"]);
    let (digest, error) = log_digest(&log);
    assert_eq!(error, None);
    assert_eq!(digest.to_hex(), generated["digest"].as_str().unwrap());
    assert!(summary["last_malformed"].is_string());
}

fn paced_run_then(sig: i32, extra: &[&str]) -> (tempfile::TempDir, std::path::PathBuf, Output) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let loadgen = Loadgen::start(
        dir.path(),
        &["-n", "2000000", "--rate", "200000", "--linger", "0"],
    );
    let mut args = vec!["--flush-ms", "10"];
    args.extend_from_slice(extra);
    let recorder = start_recorder(loadgen.port, &log, &args, &[]);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&recorder, sig);
    let out = wait_output(recorder, LONG, "imp2-record");
    // The producer sees the recorder go (ECONNREFUSED) and stops.
    let _ = wait_output(loadgen.child, LONG, "imp2-loadgen");
    (dir, log, out)
}

fn verify_and_convert(log: &std::path::Path, out_dir: &std::path::Path) -> u64 {
    let verify = run_tool("imp2-info", &["--verify", "--json", log.to_str().unwrap()]);
    assert!(
        verify.ok,
        "log does not verify: {}{}",
        verify.stdout, verify.stderr
    );
    let info: serde_json::Value = serde_json::from_str(&verify.stdout).unwrap();
    let pcap = out_dir.join("converted.pcap");
    let conv = run_tool(
        "imp2-convert",
        &[log.to_str().unwrap(), "-o", pcap.to_str().unwrap()],
    );
    assert!(conv.ok, "{}", conv.stderr);
    u(&info, "records")
}

#[test]
fn sigint_mid_run_leaves_a_complete_log() {
    let _g = serial();
    let (dir, log, out) = paced_run_then(libc::SIGINT, &[]);
    assert!(out.ok, "imp2-record failed: {}", out.stderr);
    let summary = recorder_json(&out);
    assert!(u(&summary, "records") > 0);
    assert_eq!(verify_and_convert(&log, dir.path()), u(&summary, "records"));
    assert_eq!(summary["stopped_by"], "signal SIGINT");
    assert_stopped(&summary, &log, StopCause::Signal, "SIGINT");
    // What imp2-info shows of it.
    let info = run_tool("imp2-info", &[log.to_str().unwrap()]);
    assert!(info.stdout.contains("stopped by SIGINT"), "{}", info.stdout);
}

/// SIGTERM and SIGHUP are named in the log as well.
#[test]
fn sigterm_and_sighup_are_recorded_in_the_footer() {
    let _g = serial();
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGHUP, "SIGHUP")] {
        let (_dir, log, out) = paced_run_then(sig, &[]);
        assert!(out.ok, "imp2-record failed: {}", out.stderr);
        assert_stopped(&recorder_json(&out), &log, StopCause::Signal, name);
    }
}

#[test]
fn kill_9_mid_run_leaves_every_committed_record() {
    let _g = serial();
    for extra in [&[][..], &["--direct"]] {
        killed_mid_run(extra);
    }
}

/// `kill -9` of a paced run: the log holds every committed record. With
/// `--direct` what is committed but not yet written (at most 100 ms of
/// this run) is not in the file; the rest must be.
fn killed_mid_run(extra: &[&str]) {
    let (dir, log, out) = paced_run_then(libc::SIGKILL, extra);
    assert_eq!(out.signal, Some(libc::SIGKILL));
    let records = verify_and_convert(&log, dir.path());
    assert!(
        records > 100_000,
        "1.5 s at 200k/s committed only {records} records ({extra:?})"
    );
    // Every committed record reads back whole, in order: the loadgen's
    // timestamps are strictly increasing on one CPU.
    let reader = imp2_format::log::LogReader::open(&log).unwrap();
    assert!(!reader.is_closed());
    let mut last = 0;
    let mut n = 0u64;
    for event in reader.events() {
        if let imp2_format::log::LogEvent::Record(r) = event.unwrap() {
            assert!(r.tstamp_ns > last);
            last = r.tstamp_ns;
            n += 1;
        }
    }
    assert_eq!(n, records);
}

#[test]
fn disk_full_is_a_clean_error_and_the_log_verifies() {
    let _g = serial();
    // tmpfs takes O_DIRECT from Linux 6.6 on.
    for extra in [&[][..], &["--direct"]] {
        disk_full(extra);
    }
}

fn disk_full(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let small = SmallTmpfs::for_test("3m");
    let log = small.path().join("run.log");
    let loadgen = Loadgen::start(
        dir.path(),
        &["-n", "1000000", "--size", "200", "--linger", "0"],
    );
    let recorder = start_recorder(loadgen.port, &log, extra, &[]);
    let out = wait_output(recorder, LONG, "imp2-record");
    let _ = wait_output(loadgen.child, LONG, "imp2-loadgen");
    assert_eq!(
        out.signal, None,
        "killed by a signal (SIGBUS?): {}",
        out.stderr
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("disk full"), "{}", out.stderr);
    assert_eq!(
        out.stderr
            .lines()
            .filter(|l| l.contains("disk full"))
            .count(),
        1
    );
    // Converted outside the full filesystem.
    let records = verify_and_convert(&log, dir.path());
    assert!(records > 1000, "{records}");
    // The log itself says that a full disk cut it short.
    let summary = recorder_json(&out);
    assert_stopped(
        &summary,
        &log,
        StopCause::WriteError,
        "No space left on device",
    );
}

#[test]
fn registration_errors_are_one_clear_line() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    // Nobody listens on that port.
    let out = wait_output(
        start_recorder(0x7fff_fff0, &log, &[], &[]),
        LONG,
        "imp2-record",
    );
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no producer listens"), "{}", out.stderr);
    assert!(!log.exists(), "no empty log left behind");
    // A second recorder while one is attached.
    let loadgen = Loadgen::start(
        dir.path(),
        &["-n", "2000000", "--rate", "100000", "--linger", "0"],
    );
    let first = start_recorder(loadgen.port, &log, &[], &[]);
    std::thread::sleep(Duration::from_millis(500));
    let other = dir.path().join("other.log");
    let second = wait_output(
        start_recorder(loadgen.port, &other, &[], &[]),
        LONG,
        "imp2-record",
    );
    assert_eq!(second.code, Some(1));
    assert!(
        second
            .stderr
            .contains("another recorder is already attached"),
        "{}",
        second.stderr
    );
    signal(&first, libc::SIGINT);
    assert!(wait_output(first, LONG, "imp2-record").ok);
    let _ = wait_output(loadgen.child, LONG, "imp2-loadgen");
    // Settings out of range are usage errors.
    let out = wait_output(
        start_recorder(1, &log, &["--snaplen", "0"], &[]),
        LONG,
        "imp2-record",
    );
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("snaplen"), "{}", out.stderr);
}

#[test]
fn module_not_loaded_is_explained() {
    // Unit 31 has no kernel socket on this machine (no module support).
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let child = std::process::Command::new(bin("imp2-record"))
        .args(["-q", "-o"])
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, LONG, "imp2-record");
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("module is not loaded"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

/// A recorder killed after a few records leaves a file of about a MiB (the
/// first disk reservation), not the 64 MiB of a whole chunk; imp2-info says
/// how to cut it back, `imp2-info --trim` does, and refuses while a
/// recorder is writing the log.
#[test]
fn a_log_killed_early_is_small_and_trims_to_its_committed_length() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let path = log.to_str().unwrap();
    let loadgen = Loadgen::start(dir.path(), &["-n", "3", "--linger", "60"]);
    let recorder = start_recorder(loadgen.port, &log, &["--flush-ms", "10"], &[]);
    // Until the three records are committed.
    let committed = |log: &std::path::Path| {
        imp2_format::log::LogReader::open(log).map_or(0, |r| {
            r.events()
                .filter(|e| matches!(e, Ok(imp2_format::log::LogEvent::Record(_))))
                .count()
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while committed(&log) < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(committed(&log), 3);

    // While the recorder holds the log, it is not cut.
    let busy = run_tool("imp2-info", &["--trim", path]);
    assert_eq!(busy.code, Some(1), "{}{}", busy.stdout, busy.stderr);
    assert!(
        busy.stderr
            .contains("is being written by another process (imp2-record pid"),
        "{}",
        busy.stderr
    );

    signal(&recorder, libc::SIGKILL);
    assert_eq!(
        wait_output(recorder, LONG, "imp2-record").signal,
        Some(libc::SIGKILL)
    );
    // The producer lingers for an UNREGISTER that will not come.
    signal(&loadgen.child, libc::SIGKILL);
    let _ = wait(loadgen.child, LONG);
    let len = std::fs::metadata(&log).unwrap().len();
    assert!(len <= 2 << 20, "a killed 3-record log is {len} bytes");
    let reader = imp2_format::log::LogReader::open(&log).unwrap();
    let committed_len = reader.committed_len();
    assert!(committed_len < len, "reserved space is left behind");
    drop(reader);

    let info = run_tool("imp2-info", &[path]);
    assert!(info.ok, "{}", info.stderr);
    assert!(
        info.stdout.contains(&format!(
            "{} uncommitted bytes past the committed length",
            len - committed_len
        )) && info.stdout.contains("`imp2-info --trim` cuts them"),
        "{}",
        info.stdout
    );

    let trim = run_tool("imp2-info", &["--trim", path]);
    assert!(trim.ok, "{}", trim.stderr);
    assert_eq!(
        trim.stdout,
        format!(
            "{path}: cut {} uncommitted bytes; the log is now {committed_len} bytes\n",
            len - committed_len
        )
    );
    assert_eq!(std::fs::metadata(&log).unwrap().len(), committed_len);
    assert_eq!(committed(&log), 3, "the same records after trimming");
    let verify = run_tool("imp2-info", &["--verify", path]);
    assert!(verify.ok, "{}{}", verify.stdout, verify.stderr);
    let again = run_tool("imp2-info", &["--trim", path]);
    assert!(again.ok, "{}", again.stderr);
    assert!(again.stdout.contains("nothing to trim"), "{}", again.stdout);
}

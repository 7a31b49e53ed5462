//! A recorder that dies (dropped writer, real `kill -9`) and a disk that
//! fills up: what was committed must read back intact.

mod log_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use imp2_format::log::{
    LogEvent, LogReader, LogWriter, Losses, StopCause, StopReason, WriteMode, WriterOptions,
};
use imp2_testkit::SmallTmpfs;
use log_support::*;

/// The i-th record written by the crash tests (deterministic, so the parent
/// of a killed child knows what it wrote).
fn rec(i: u64) -> Rec {
    let len = 40 + (i * 37 % 1400) as u32;
    Rec {
        tstamp_ns: 1_000_000 + i * 1000,
        ifindex: 1 + (i % 3) as u32,
        orig_len: len,
        hook: if i % 2 == 0 { 0 } else { 3 },
        family: if i % 5 == 0 { 10 } else { 2 },
        protocol: 6,
        data: vec![i as u8; len as usize],
    }
}

fn check_prefix(path: &Path, at_least: u64) -> u64 {
    let r = LogReader::open(path).unwrap();
    assert!(!r.is_closed());
    let (evs, err) = read_all(&r);
    assert!(err.is_none(), "{}", err.unwrap());
    let recs = records_of(&evs);
    assert!(recs.len() as u64 >= at_least, "{} < {at_least}", recs.len());
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(*r, rec(i as u64), "record {i}");
    }
    assert!(!evs.iter().any(|e| matches!(e, Ev::Foot(_))));
    recs.len() as u64
}

#[test]
fn dropped_or_forgotten_writer_keeps_committed_records() {
    let dir = tempfile::tempdir().unwrap();
    for (m, opts) in modes().into_iter().enumerate() {
        for forget in [false, true] {
            let path = dir.path().join(format!("crash{m}{forget}.log"));
            let mut w = LogWriter::create_with(&path, &header(&[]), opts).unwrap();
            for i in 0..3000 {
                w.append(&rec(i).as_record()).unwrap();
                if i % 100 == 99 {
                    w.commit().unwrap();
                }
            }
            let direct = opts.mode == WriteMode::Direct;
            if direct && forget {
                // Direct mode: a commit is durable once its buffer is
                // written, which this waits for. Dropping the writer does
                // it too (the other case).
                w.flush_committed().unwrap();
            }
            // 3000 committed; these 50 are not.
            for i in 3000..3050 {
                w.append(&rec(i).as_record()).unwrap();
            }
            let committed = w.committed_len();
            if forget {
                // Like kill -9: no destructor runs at all.
                std::mem::forget(w);
            } else {
                drop(w);
            }
            let n = check_prefix(&path, 3000);
            assert_eq!(n, 3000, "uncommitted records were read");
            let r = LogReader::open(&path).unwrap();
            if direct && !forget {
                // What was not yet written when the writer was dropped was
                // written by the drop.
                assert!(r.committed_len() >= committed);
            } else {
                assert_eq!(r.committed_len(), committed);
            }
            // The space reserved ahead is left behind as an uncommitted tail.
            assert_eq!(
                r.uncommitted_len(),
                std::fs::metadata(&path).unwrap().len() - r.committed_len()
            );
        }
    }
}

const CHILD_ENV: &str = "IMP2_LOG_KILL_CHILD";

/// Records the child writes at most (~150 MB), so that a child whose
/// parent is gone cannot fill the disk.
const CHILD_MAX_RECORDS: u64 = 200_000;

/// Runs only as the child of `kill_9_while_writing` (which runs it with
/// `--ignored`): keeps appending and committing, reports progress once, and
/// is killed while writing.
#[test]
#[ignore = "the child process of kill_9_while_writing, which runs it; not a test of its own"]
fn kill_9_child_helper() {
    use std::io::Write;
    let spec = std::env::var(CHILD_ENV).unwrap_or_else(|_| {
        panic!("{CHILD_ENV} unset: this is the child of kill_9_while_writing, run by it")
    });
    let (mode, path) = spec.split_once(':').unwrap();
    let opts = WriterOptions {
        mode: match mode {
            "mmap" => WriteMode::Mmap,
            "direct" => WriteMode::Direct,
            _ => WriteMode::Pwrite,
        },
        chunk_bytes: 1 << 20,
    };
    let mut w = LogWriter::create_with(Path::new(path), &header(&[]), opts).unwrap();
    for i in 0..CHILD_MAX_RECORDS {
        w.append(&rec(i).as_record()).unwrap();
        if (i + 1) % 100 == 0 {
            w.commit().unwrap();
            if i + 1 == 5000 {
                // Direct mode: committed is durable once written.
                w.flush_committed().unwrap();
                // Straight to the pipe: print! would be captured by libtest.
                let mut out = std::io::stdout();
                writeln!(out, "COMMITTED {}", i + 1).unwrap();
                out.flush().unwrap();
            }
        }
    }
    // Not killed yet: wait a bit for it, then give up.
    std::thread::sleep(std::time::Duration::from_secs(30));
    std::process::exit(3);
}

#[test]
fn kill_9_while_writing() {
    let dir = tempfile::tempdir().unwrap();
    for mode in ["pwrite", "mmap", "direct"] {
        let path = dir.path().join(format!("killed-{mode}.log"));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill_9_child_helper",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{mode}:{}", path.display()))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let committed = loop {
            let line = lines.next().expect("child exited early").unwrap();
            // libtest may have printed "test ... " on the same line.
            if let Some((_, n)) = line.split_once("COMMITTED ") {
                break n.parse::<u64>().unwrap();
            }
        };
        // Let it write a few thousand more records, then SIGKILL it in the
        // middle of appending or committing.
        std::thread::sleep(std::time::Duration::from_millis(25));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
        let n = check_prefix(&path, committed);
        assert!(
            n < CHILD_MAX_RECORDS,
            "the child was not killed while writing"
        );
        println!("{mode}: child killed after committing at least {committed}, read back {n}");
    }
}

#[test]
fn disk_full_is_an_error_and_the_log_stays_valid() {
    let fs = SmallTmpfs::for_test("2m");
    for (m, opts) in modes().into_iter().enumerate() {
        for finish in [true, false] {
            let path = fs.path().join(format!("full{m}{finish}.log"));
            let mut w = LogWriter::create_with(&path, &header(&[(1, "lo")]), opts).unwrap();
            let mut appended = 0u64;
            let err = loop {
                match w.append(&rec(appended).as_record()) {
                    Ok(()) => appended += 1,
                    Err(e) => break e,
                }
                if appended % 50 == 0 {
                    if let Err(e) = w.commit() {
                        break e;
                    }
                }
                assert!(appended < 100_000, "the disk never filled up");
            };
            assert!(err.is_disk_full(), "{err}");
            println!("{opts:?}: disk full after {appended} records: {err}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
            let committed_records = appended / 50 * 50;
            assert!(appended > 1000, "only {appended} records fit");
            if finish {
                // Fill the last reserved bytes with empty records, so that
                // only the footer's own reserve is left.
                let empty = Rec {
                    data: vec![],
                    orig_len: 0,
                    ..rec(0)
                };
                let mut fillers = 0u64;
                while w.append(&empty.as_record()).is_ok() {
                    fillers += 1;
                }
                // The footer's room was held back, for the largest closing
                // LOSSES frame and the largest footer (every counter at its
                // longest, the longest stop reason): the log closes
                // cleanly, with every record appended before the error.
                let detail = format!("{}: {}", err.source, "x".repeat(2000));
                w.set_stop(StopReason::new(StopCause::WriteError, detail));
                let most = Losses {
                    kernel: [u64::MAX / 2; 4],
                    gap_records: u64::MAX / 2,
                    gap_batches: u64::MAX,
                    truncated_batches: u64::MAX,
                    malformed_messages: u64::MAX,
                    socket_errors: u64::MAX,
                    unwritten: u64::MAX / 2,
                };
                let footer = w.finish_with_losses(&most, 7).unwrap();
                assert_eq!(footer.records, appended + fillers);
                let stop = footer.stop.clone().unwrap();
                assert_eq!(stop.detail.len(), StopReason::MAX_DETAIL);
                assert!(stop.detail.starts_with("No space left on device"));
                let r = LogReader::open(&path).unwrap();
                assert!(r.is_closed());
                let (evs, err) = read_all(&r);
                assert!(err.is_none(), "{}", err.unwrap());
                let read_footer = r.events().find_map(|e| match e {
                    Ok(LogEvent::Footer(f)) => Some(f),
                    _ => None,
                });
                assert_eq!(read_footer, Some(footer));
                let recs = records_of(&evs);
                assert_eq!(recs.len() as u64, appended + fillers);
                let (written, filled) = recs.split_at(appended as usize);
                assert!(written.iter().enumerate().all(|(i, r)| *r == rec(i as u64)));
                assert!(filled.iter().all(|r| *r == empty));
            } else {
                drop(w);
                assert_eq!(check_prefix(&path, committed_records), committed_records);
            }
            std::fs::remove_file(&path).unwrap();
        }
    }
}

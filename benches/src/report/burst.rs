//! Burst absorption (measuring).

use super::*;

#[derive(Debug, Default)]
pub(super) struct Burst {
    pub(super) rcvbuf: u64,
    pub(super) sent: u64,
    pub(super) before: M,
    pub(super) held: M,
    pub(super) per_mib: M,
    pub(super) truesize: M,
    pub(super) errors: Vec<String>,
}

/// The recorder (granted receive buffer `mib` MiB) is stopped as soon as
/// its first batch is queued; the loadgen sends 3 buffers' worth of
/// 92-byte packets (a whole number of batches, so the FINAL batch carries
/// none) and reports what did not fit as drops; then the recorder is
/// resumed and stopped once drained. held = records recorded.
pub(super) fn burst_once(dir: &Path, mib: u64, b: &mut Burst) -> Result<(), String> {
    let per_batch = records_per_batch(92);
    let batches = 3 * (mib << 20) / u64::from(imp2_format::wire::abi::BATCH_BYTES_DEFAULT);
    let n = per_batch * batches;
    b.sent = n;
    let args: Vec<String> = [
        "-n",
        &n.to_string(),
        "--size",
        "92",
        "--linger",
        "20",
        "--final-timeout",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let lg = Loadgen::start(dir, &args);
    let log = dir.join("burst.log");
    let rcvbuf = format!("{mib}M");
    let mut cmd = Command::new(bin("imp2-record"));
    cmd.args([
        "--unit",
        "2",
        "--peer",
        &lg.port.to_string(),
        "--json",
        "-q",
    ])
    .args(["--rcvbuf", &rcvbuf, "--duration", "60", "-o"])
    .arg(&log)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let rec = cmd.spawn().map_err(|e| format!("imp2-record: {e}"))?;
    let port = rec.id();
    let seen = until(Duration::from_secs(10), Duration::from_micros(20), || {
        netlink_rmem(port).is_some_and(|r| r > 0)
    });
    signal(&rec, libc::SIGSTOP);
    // What the recorder took before it stopped is in its log already
    // (committed per batch): it does not count as held.
    std::thread::sleep(Duration::from_millis(20));
    let before = committed_records(&log);
    // Full once the queue stops growing for 300 ms.
    let mut last = 0;
    let mut stable = 0;
    let full = until(Duration::from_secs(30), Duration::from_millis(10), || {
        let r = netlink_rmem(port).unwrap_or(0);
        if r == last {
            stable += 1;
        } else {
            stable = 0;
            last = r;
        }
        stable >= 30
    });
    let queued = last;
    signal(&rec, libc::SIGCONT);
    let drained = until(Duration::from_secs(30), Duration::from_millis(1), || {
        netlink_rmem(port).is_none_or(|r| r == 0)
    });
    std::thread::sleep(Duration::from_millis(300)); // the FINAL batch
    signal(&rec, libc::SIGINT);
    let out = wait(rec, Duration::from_secs(30));
    let lg_out = wait(lg.child, Duration::from_secs(30));
    let _ = std::fs::remove_file(&log);
    if !(seen && full && drained && out.ok) {
        return Err(format!(
            "burst run failed (seen {seen}, full {full}, drained {drained}): {} {}",
            out.stderr.trim(),
            lg_out.stderr.trim()
        ));
    }
    let j = json(&out.stdout, "imp2-record")?;
    let records = num(&j, &["records"]);
    let lost = num(&j, &["losses", "records_lost"]);
    let granted = num(&j, &["rcvbuf"]);
    if records + lost != n as f64 {
        return Err(format!(
            "burst: recorded {records} + lost {lost} != sent {n}"
        ));
    }
    let held = records - before as f64;
    b.rcvbuf = granted as u64;
    b.before.push(before as f64);
    b.held.push(held);
    b.per_mib.push(held / (granted / f64::from(1 << 20)));
    b.truesize.push(queued as f64 / held);
    Ok(())
}

/// Records in the committed part of a log being written (0 if unreadable).
pub(super) fn committed_records(log: &Path) -> u64 {
    imp2_format::log::LogReader::open(log).map_or(0, |r| {
        r.events()
            .filter(|e| matches!(e, Ok(imp2_format::log::LogEvent::Record(_))))
            .count() as u64
    })
}

pub(super) fn burst(dir: &Path, plan: &Plan) -> Burst {
    let mut b = Burst::default();
    for _ in 0..plan.burst_rounds {
        if let Err(e) = burst_once(dir, plan.burst_rcvbuf_mib, &mut b) {
            b.errors.push(e);
        }
    }
    b
}

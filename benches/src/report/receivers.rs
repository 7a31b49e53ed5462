//! Recorder CPU and rate: batched vs `--per-record` vs the bare receiver
//! (measuring).

use super::*;

/// One live run: loadgen as fast as it can, the receiver concurrently with
/// a receive buffer large enough that nothing is lost. Returns CPU ns per
/// record of the receiver (user + sys from its JSON, start-up included).
pub(super) fn live(dir: &Path, mode: ReceiverKind, n: u64) -> Result<f64, String> {
    let mut args: Vec<String> = vec!["-n".into(), n.to_string(), "--size".into(), "64".into()];
    args.extend(mode.loadgen_args().iter().map(|s| s.to_string()));
    let lg = Loadgen::start(dir, &args);
    let log = dir.join("live.log");
    let rec = mode.spawn(lg.port, &log, n, "1G", Duration::from_secs(60));
    let out = wait(rec, Duration::from_secs(75));
    let lg_out = wait(lg.child, Duration::from_secs(20));
    let _ = std::fs::remove_file(&log);
    if !out.ok {
        return Err(format!("{} failed: {}", mode.name(), out.stderr.trim()));
    }
    if !lg_out.ok {
        return Err(format!("imp2-loadgen failed: {}", lg_out.stderr.trim()));
    }
    let j = json(&out.stdout, mode.name())?;
    let records = num(&j, &["records"]);
    let lost = if mode == ReceiverKind::Bare {
        num(&j, &["dropped"])
    } else {
        num(&j, &["losses", "records_lost"])
    };
    if records != n as f64 || lost != 0.0 {
        return Err(format!(
            "{}: {records} of {n} records, {lost} lost",
            mode.name()
        ));
    }
    Ok((num(&j, &["cpu_user_s"]) + num(&j, &["cpu_sys_s"])) * 1e9 / records)
}

/// Spins until `f` is true or `timeout` passes; sleeps `nap` between tries.
pub(super) fn until(timeout: Duration, nap: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(nap);
    }
    false
}

/// One drain run: the receiver is stopped (SIGSTOP) as soon as the first
/// batch is queued, the loadgen queues all `n` records into a 1 GiB receive
/// buffer and exits, then the receiver is resumed: records/s = n / (time
/// from SIGCONT until its socket queue is empty), read from
/// /proc/net/netlink. Zero loss is checked.
pub(super) fn drain(dir: &Path, mode: ReceiverKind, n: u64) -> Result<f64, String> {
    let mut args: Vec<String> = vec![
        "-n".into(),
        n.to_string(),
        "--size".into(),
        "64".into(),
        "--linger".into(),
        "0".into(),
    ];
    args.extend(mode.loadgen_args().iter().map(|s| s.to_string()));
    let lg = Loadgen::start(dir, &args);
    let log = dir.join("drain.log");
    let rec = mode.spawn(lg.port, &log, n, "1G", Duration::from_secs(60));
    let port = rec.id();
    let seen = until(Duration::from_secs(10), Duration::from_micros(20), || {
        netlink_rmem(port).is_some_and(|r| r > 0)
    });
    signal(&rec, libc::SIGSTOP);
    let lg_out = wait(lg.child, Duration::from_secs(60));
    let t0 = Instant::now();
    signal(&rec, libc::SIGCONT);
    let empty = until(Duration::from_secs(60), Duration::from_micros(200), || {
        netlink_rmem(port).is_none_or(|r| r == 0)
    });
    let span = t0.elapsed().as_secs_f64();
    let out = wait(rec, Duration::from_secs(30));
    let _ = std::fs::remove_file(&log);
    if !seen || !empty {
        return Err(format!(
            "{}: socket of port {port} not found or not drained",
            mode.name()
        ));
    }
    if !out.ok || !lg_out.ok {
        return Err(format!(
            "{} drain failed: {} {}",
            mode.name(),
            out.stderr.trim(),
            lg_out.stderr.trim()
        ));
    }
    let j = json(&out.stdout, mode.name())?;
    let records = num(&j, &["records"]);
    let lost = if mode == ReceiverKind::Bare {
        num(&j, &["dropped"])
    } else {
        num(&j, &["losses", "records_lost"])
    };
    if records != n as f64 || lost != 0.0 {
        return Err(format!(
            "{} drain: {records} of {n} records, {lost} lost",
            mode.name()
        ));
    }
    Ok(n as f64 / span)
}

#[derive(Debug, Default)]
pub(super) struct RecvResults {
    pub(super) cpu: [M; 4],
    pub(super) rate: [M; 4],
    /// The recorder's hot path without sockets (`hotpath` example): user
    /// and system CPU ns per record of walk + append, CPU ns of the walk.
    pub(super) hot_user: M,
    pub(super) hot_sys: M,
    pub(super) hot_walk: M,
    pub(super) errors: Vec<String>,
}

/// Runs the `hotpath` example (walk in-memory batches of 64-byte records,
/// encode, checksum and `pwrite` them into a log, as imp2-record does, but
/// without sockets) and returns the (user, system) CPU ns per record of
/// that, and the CPU ns per record of its walk alone.
pub(super) fn hot_path(dir: &Path, n: u64) -> Result<(f64, f64, f64), String> {
    let args = [dir.display().to_string(), n.to_string()];
    let stages = crate::run_example("hotpath", &args, Duration::from_secs(300))?;
    // "walk + log append (Pwrite)   60.4 ns/record wall,   59.3 CPU (32.9 user + 26.4 system)"
    let walk = crate::stage(&stages, "walk only")?;
    let append = stages
        .iter()
        .find(|s| s.name.starts_with("walk + log append"))
        .ok_or_else(|| format!("hotpath: no append stage among {stages:?}"))?;
    Ok((append.user, append.sys, walk.cpu))
}

/// Indexes of `RecvResults::cpu` and `rate`.
pub(super) const MODES: [ReceiverKind; 4] = [
    ReceiverKind::Batched,
    ReceiverKind::PerRecord,
    ReceiverKind::Bare,
    ReceiverKind::Direct,
];

pub(super) fn receivers(dir: &Path, plan: &Plan) -> RecvResults {
    let mut r = RecvResults::default();
    for round in 0..plan.rounds {
        for k in 0..MODES.len() {
            let i = (round + k) % MODES.len();
            let mode = MODES[i];
            let n = if mode == ReceiverKind::PerRecord {
                plan.per_record_n
            } else {
                plan.batched_n
            };
            match live(dir, mode, n) {
                Ok(x) => r.cpu[i].push(x),
                Err(e) => r.errors.push(e),
            }
            match drain(dir, mode, n) {
                Ok(x) => r.rate[i].push(x),
                Err(e) => r.errors.push(e),
            }
        }
        match hot_path(dir, plan.batched_n) {
            Ok((user, sys, walk)) => {
                r.hot_user.push(user);
                r.hot_sys.push(sys);
                r.hot_walk.push(walk);
            }
            Err(e) => r.errors.push(e),
        }
        eprintln!("imp2-bench-report: receivers round {} done", round + 1);
    }
    r
}

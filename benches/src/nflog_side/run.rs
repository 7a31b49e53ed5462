//! The measuring: rounds of paired capture and no-capture runs.

use super::*;

/// One traffic run's measurements.
#[derive(Debug)]
pub(super) struct CaptureRun {
    pub(super) sent: u64,
    pub(super) pps: f64,
    pub(super) cpu_s: f64,
    pub(super) count: Count,
    pub(super) file_bytes: u64,
    pub(super) arrived: Option<u64>,
    pub(super) self_report: String,
    pub(super) imp2_lost: u64,
}

/// Starts `cap`, waits until it is ready; with `Some(n)` floods n packets,
/// lets it settle and stops it; with `None` only holds it as long as a
/// traffic run's settle (an idle run: its fixed start-up and stop cost).
pub(super) fn capture(
    cap: Capturer,
    ns: &VethPair,
    env: &Env,
    dir: &Path,
    tag: &str,
    n: Option<u64>,
) -> Result<CaptureRun, String> {
    let out = dir.join(format!("{}-{tag}.{}", cap.short(), cap.output_ext()));
    let _ = std::fs::remove_file(&out);
    let stdout_path = dir.join(format!("{}-{tag}.stdout", cap.short()));
    let stdout = std::fs::File::create(&stdout_path)
        .map_err(|e| format!("{}: {e}", stdout_path.display()))?;
    let (program, args) = command(cap, env, &out, dir);
    let mut proc = Proc::spawn(ns.exec(&ns.b, &program, &args), cap.short(), stdout.into())?;
    wait_ready(cap, &mut proc)?;
    let arrived0 = arrived(ns).ok();
    let sent = match n {
        Some(n) => Some(flood(ns, env, n)?),
        None => None,
    };
    std::thread::sleep(SETTLE);
    if sent.is_some() {
        // A capturer still working through what was queued is given time
        // (bounded) rather than counted as having lost it: wait until its
        // CPU ticks and its file both stand still for 200 ms.
        let deadline = Instant::now() + STEP;
        let mut last = (proc.ticks(), file_len(&out));
        let mut still = 0;
        while still < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let now = (proc.ticks(), file_len(&out));
            still = if now == last { still + 1 } else { 0 };
            last = now;
        }
    }
    let arrived = arrived0.and_then(|a0| arrived(ns).ok().map(|a1| a1 - a0));
    let exit = proc.stop(cap.stop_signal(), STEP)?;
    let stderr = proc.stderr();
    let json = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let _ = std::fs::remove_file(&stdout_path);
    if !exit.ok {
        let _ = std::fs::remove_file(&out);
        return Err(format!(
            "{} exited with an error: {}{}",
            cap.short(),
            stderr.trim(),
            json.trim()
        ));
    }
    let (count, imp2_lost, self_report) = match cap {
        Capturer::Imp2 | Capturer::Imp2Direct => {
            let c = count_log(&out);
            let v: Value = serde_json::from_str(json.trim())
                .map_err(|e| format!("imp2-record JSON: {e}: {}", json.trim()))?;
            let lost = v["losses"]["records_lost"].as_u64().unwrap_or(u64::MAX);
            let ring = match (
                v["receive_buffers"].as_u64(),
                v["receive_buffer_bytes"].as_u64(),
            ) {
                (Some(n), Some(b)) => format!(", receive buffers {n} x {} KiB", b >> 10),
                _ => String::new(),
            };
            (c, lost, format!("records_lost {lost}{ring}"))
        }
        Capturer::Tcpdump => (
            count_capture(&out),
            0,
            stderr
                .lines()
                .find(|l| l.contains("dropped by kernel"))
                .unwrap_or("no drop report")
                .trim()
                .to_string(),
        ),
        Capturer::Dumpcap => (
            count_capture(&out),
            0,
            stderr
                .lines()
                .find(|l| l.contains("received/dropped"))
                .and_then(|l| l.split(": ").nth(1))
                .map(|s| format!("received/dropped {s}"))
                .unwrap_or_else(|| "no drop report".into()),
        ),
        Capturer::CReader => (
            count_capture(&out),
            0,
            stderr
                .lines()
                .find(|l| l.starts_with("nflog-pcap: "))
                .map(|l| l.trim_start_matches("nflog-pcap: ").trim().to_string())
                .unwrap_or_else(|| "no report".into()),
        ),
        Capturer::Ulogd => {
            // ulogd2 counts nothing, but logs "losing events" when the
            // kernel could not queue to its socket (ENOBUFS), and errors
            // at level 7 and 8.
            let log = ulogd_log(&out);
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            let errors: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("<7>") || l.contains("<8>") || l.contains("losing"))
                .collect();
            let report = match errors.first() {
                None => "no drop count; no error in its log".to_string(),
                Some(first) => format!(
                    "no drop count; {} loss/error lines in its log, the first: `{}`",
                    errors.len(),
                    first.split("> ").nth(1).unwrap_or(first).trim()
                ),
            };
            (count_capture(&out), 0, report)
        }
    };
    let file_bytes = file_len(&out).unwrap_or(0);
    let _ = std::fs::remove_file(&out);
    let count = count?;
    Ok(CaptureRun {
        sent: sent.as_ref().map_or(0, |s| s.sent),
        pps: sent.as_ref().map_or(f64::NAN, |s| s.pps),
        cpu_s: exit.cpu_s,
        count,
        file_bytes,
        arrived,
        self_report,
        imp2_lost,
    })
}

pub(super) fn file_len(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.len())
}

/// Waits (bounded) until the capturer captures: the NFLOG group is bound
/// in the namespace (seen through the child's own /proc/PID/net), or
/// tcpdump/dumpcap said so on stderr.
pub(super) fn wait_ready(cap: Capturer, proc: &mut Proc) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let table = format!("/proc/{}/net/netfilter/nfnetlink_log", proc.pid());
    loop {
        let ready = if cap.binds_nflog() {
            std::fs::read_to_string(&table).is_ok_and(|t| {
                t.lines()
                    .any(|l| l.split_whitespace().next() == Some(&GROUP.to_string()))
            })
        } else {
            let err = proc.stderr();
            match cap {
                Capturer::Tcpdump => err.contains("listening on"),
                _ => err.lines().any(|l| l.starts_with("File:")),
            }
        };
        if ready {
            // The readiness signs come just before the capture loop starts.
            std::thread::sleep(Duration::from_millis(100));
            return Ok(());
        }
        if proc.reap(false) {
            return Err(format!(
                "{} exited before it was ready: {}",
                cap.short(),
                proc.stderr().trim()
            ));
        }
        if Instant::now() > deadline {
            proc.kill();
            return Err(format!(
                "{} was not ready within 20 s (killed): {}",
                cap.short(),
                proc.stderr().trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the whole comparison in scratch directory `dir` (created if
/// needed; the capture files are removed after counting).
pub fn run(dir: &Path, quick: bool) -> NflogSide {
    let plan = if quick {
        Plan {
            rounds: 2,
            packets: 200_000,
            budget: Duration::from_secs(75),
        }
    } else {
        Plan {
            rounds: 5,
            packets: 1_000_000,
            budget: Duration::from_secs(900),
        }
    };
    let started = Instant::now();
    let mut side = NflogSide {
        quick,
        rounds: plan.rounds,
        rounds_done: 0,
        packets: plan.packets,
        setup_error: None,
        baseline_pps: M::default(),
        caps: Vec::new(),
        notes: Vec::new(),
        load: (loadavg(), String::new()),
        took: Duration::ZERO,
        dir: dir.to_path_buf(),
        hot: Default::default(),
    };
    if let Err(e) = run_rounds(dir, &plan, &mut side, started) {
        side.setup_error = Some(e);
    }
    side.load.1 = loadavg();
    side.took = started.elapsed();
    side
}

pub(super) fn step(started: Instant, what: &str) {
    eprintln!(
        "imp2-bench-nflog: {what} ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
}

pub(super) fn run_rounds(
    dir: &Path,
    plan: &Plan,
    side: &mut NflogSide,
    started: Instant,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let env = setup_env(dir)?;
    side.caps = Capturer::ALL
        .iter()
        .map(|&c| CapStats::new(c, availability(c, &env), command_text(c)))
        .collect();
    let ns = netns(dir)?;
    // Resolves ARP and warms the path; not measured.
    flood(&ns, &env, 20_000).map_err(|e| format!("warm-up flood: {e}"))?;
    let usable: Vec<usize> = (0..side.caps.len())
        .filter(|&i| side.caps[i].available.is_ok())
        .collect();
    for round in 0..plan.rounds {
        if started.elapsed() > plan.budget {
            side.notes.push(format!(
                "stopped after {round} of {} rounds: the time budget of {} s was used",
                plan.rounds,
                plan.budget.as_secs()
            ));
            break;
        }
        // Rotating order: each capturer meets every position (and so the
        // machine's drift) in turn.
        let mut order = usable.clone();
        if !order.is_empty() {
            let k = round % order.len();
            order.rotate_left(k);
        }
        // Every capture run sits between two no-capture runs (B C B C ...
        // B): its baseline is the mean of the two, which cancels a linear
        // drift of the machine's load over the pair.
        let mut before: Option<f64> = None;
        let mut pending: Option<(usize, f64)> = None;
        for &i in &order {
            let cap = side.caps[i].capturer;
            let base = baseline(side, &ns, &env, plan.packets, round);
            close_pair(side, pending.take(), before, base);
            before = base;
            step(
                started,
                &format!("round {}/{}: {}", round + 1, plan.rounds, cap.short()),
            );
            let tag = format!("r{round}");
            match capture(cap, &ns, &env, dir, &tag, Some(plan.packets)) {
                Ok(run) => {
                    record(side, i, round, &run);
                    pending = Some((i, run.pps));
                }
                Err(e) => side.caps[i]
                    .failures
                    .push(format!("round {}: {e}", round + 1)),
            }
        }
        let after = baseline(side, &ns, &env, plan.packets, round);
        close_pair(side, pending.take(), before, after);
        for &i in &order {
            let cap = side.caps[i].capturer;
            match capture(cap, &ns, &env, dir, &format!("idle{round}"), None) {
                Ok(run) => side.caps[i].idle_cpu.push(run.cpu_s),
                Err(e) => side.caps[i]
                    .failures
                    .push(format!("round {}: idle run: {e}", round + 1)),
            }
        }
        if let Err(e) = side.hot.measure(dir, plan.packets) {
            side.notes
                .push(format!("round {}: the hot path: {e}", round + 1));
        }
        side.rounds_done = round + 1;
    }
    // CPU per packet once every idle run is in: the median start-up cost is
    // subtracted from every traffic run.
    for c in &mut side.caps {
        let idle = c.idle_cpu.med();
        if !idle.is_finite() {
            continue;
        }
        for &(cpu, captured) in &c.raw {
            if captured > 0 {
                c.ns.push((cpu - idle) * 1e9 / captured as f64);
            }
        }
    }
    Ok(())
}

/// A no-capture flood: its packets/s, or `None` (noted) if it failed.
pub(super) fn baseline(
    side: &mut NflogSide,
    ns: &VethPair,
    env: &Env,
    n: u64,
    round: usize,
) -> Option<f64> {
    match flood(ns, env, n) {
        Ok(b) => {
            side.baseline_pps.push(b.pps);
            Some(b.pps)
        }
        Err(e) => {
            side.notes
                .push(format!("round {}: a baseline run failed: {e}", round + 1));
            None
        }
    }
}

/// The senders' rate kept by capture run `pending` (capturer, its pps),
/// against the mean of the no-capture runs before and after it (or the
/// one that succeeded).
pub(super) fn close_pair(
    side: &mut NflogSide,
    pending: Option<(usize, f64)>,
    before: Option<f64>,
    after: Option<f64>,
) {
    let Some((i, pps)) = pending else { return };
    let base = match (before, after) {
        (Some(x), Some(y)) => (x + y) / 2.0,
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return,
    };
    side.caps[i].kept.push(pps / base);
}

pub(super) fn record(side: &mut NflogSide, i: usize, round: usize, run: &CaptureRun) {
    let c = &mut side.caps[i];
    let name = c.capturer.short();
    c.sent += run.sent;
    c.captured += run.count.flood;
    c.imp2_lost += run.imp2_lost;
    c.self_reported.push(run.self_report.clone());
    if run.sent > 0 {
        c.ratio.push(run.count.flood as f64 / run.sent as f64);
    }
    if run.count.total > 0 {
        c.bpp.push(run.file_bytes as f64 / run.count.total as f64);
    }
    c.pps.push(run.pps);
    c.raw.push((run.cpu_s, run.count.flood));
    if run.count.flood != run.sent {
        side.notes.push(format!(
            "round {}: {name} wrote {} of the {} packets sent ({} short; it reported: {})",
            round + 1,
            run.count.flood,
            run.sent,
            run.sent as i64 - run.count.flood as i64,
            run.self_report
        ));
    }
    if let Some(a) = run.arrived {
        if a != run.sent {
            side.notes.push(format!(
                "round {}: during the {name} run {a} packets reached B's input rule of {} sent \
                 (the veth or the backlog dropped the rest before any NFLOG capture)",
                round + 1,
                run.sent
            ));
        }
    }
}

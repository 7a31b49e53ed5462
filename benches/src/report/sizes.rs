//! Recording a log over netlink, and its bytes on disk per packet
//! (measuring).

use super::*;

/// Records `n` packets of `sizes` from the loadgen through imp2-record into
/// `log`; returns the number of records.
pub(super) fn record_log(dir: &Path, log: &Path, n: u64, sizes: &str) -> Result<u64, String> {
    let args: Vec<String> = vec!["-n".into(), n.to_string(), "--size".into(), sizes.into()];
    let lg = Loadgen::start(dir, &args);
    let rec = ReceiverKind::Batched.spawn(lg.port, log, n, "1G", Duration::from_secs(120));
    let out = wait(rec, Duration::from_secs(130));
    let lg_out = wait(lg.child, Duration::from_secs(20));
    if !out.ok || !lg_out.ok {
        return Err(format!(
            "recording {sizes}-byte packets failed: {} {}",
            out.stderr.trim(),
            lg_out.stderr.trim()
        ));
    }
    let j = json(&out.stdout, "imp2-record")?;
    let records = num(&j, &["records"]) as u64;
    if records != n || num(&j, &["losses", "records_lost"]) != 0.0 {
        return Err(format!("recorded {records} of {n} records"));
    }
    Ok(records)
}

pub(super) fn run_tool(
    exe: &Path,
    args: &[&std::ffi::OsStr],
    timeout: Duration,
) -> Result<f64, String> {
    let t = Instant::now();
    crate::run_checked(Command::new(exe).args(args), timeout)?;
    Ok(t.elapsed().as_secs_f64())
}

pub(super) fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

#[derive(Debug, Default)]
pub(super) struct Sizes {
    pub(super) records: u64,
    pub(super) imp2: f64,
    /// `imp2-convert`'s default link type, LINKTYPE_LINUX_SLL2.
    pub(super) pcap: f64,
    pub(super) pcapng: f64,
    /// `--linktype raw`: 20 bytes less per packet.
    pub(super) pcap_raw: f64,
    pub(super) pcapng_raw: f64,
    pub(super) error: Option<String>,
}

pub(super) fn sizes(dir: &Path, plan: &Plan) -> Sizes {
    let mut s = Sizes::default();
    let log = dir.join("sizes.log");
    // (file, --linktype)
    let outputs = [
        (dir.join("sizes.pcap"), "sll2"),
        (dir.join("sizes.pcapng"), "sll2"),
        (dir.join("sizes-raw.pcap"), "raw"),
        (dir.join("sizes-raw.pcapng"), "raw"),
    ];
    let r = (|| {
        let n = record_log(dir, &log, plan.size_n, "92")?;
        let conv = bin("imp2-convert");
        for (out, link) in &outputs {
            run_tool(
                &conv,
                &[
                    log.as_os_str(),
                    "-o".as_ref(),
                    out.as_os_str(),
                    "--linktype".as_ref(),
                    link.as_ref(),
                ],
                Duration::from_secs(120),
            )?;
        }
        Ok::<u64, String>(n)
    })();
    match r {
        Ok(n) => {
            let per_packet = |p: &Path| file_len(p) as f64 / n as f64;
            s.records = n;
            s.imp2 = per_packet(&log);
            s.pcap = per_packet(&outputs[0].0);
            s.pcapng = per_packet(&outputs[1].0);
            s.pcap_raw = per_packet(&outputs[2].0);
            s.pcapng_raw = per_packet(&outputs[3].0);
        }
        Err(e) => s.error = Some(e),
    }
    let _ = std::fs::remove_file(&log);
    for (p, _) in &outputs {
        let _ = std::fs::remove_file(p);
    }
    s
}

//! Conversion: imp2-convert vs editcap (measuring).

use super::*;

#[derive(Debug, Default)]
pub(super) struct ConvSet {
    pub(super) name: String,
    pub(super) records: u64,
    pub(super) imp2_bytes: u64,
    pub(super) editcap_bytes: u64,
    pub(super) imp2_s: M,
    pub(super) editcap_s: M,
    /// editcap time / imp2-convert time, per round.
    pub(super) speedup: M,
    pub(super) imp2_gbps: M,
    pub(super) editcap_gbps: M,
}

#[derive(Debug, Default)]
pub(super) struct Conv {
    pub(super) sets: Vec<ConvSet>,
    pub(super) errors: Vec<String>,
    pub(super) editcap: Option<String>,
}

pub(super) fn conversion(dir: &Path, plan: &Plan) -> Conv {
    let mut c = Conv::default();
    let editcap = which("editcap");
    c.editcap = editcap.as_ref().map(|_| editcap_version());
    let conv = bin("imp2-convert");
    for (name, sizes, n) in [
        ("92-byte packets", "92", plan.conv_small_n),
        ("1400/1400/92-byte mix", "1400,1400,92", plan.conv_mix_n),
    ] {
        let log = dir.join("conv.log");
        let pcap = dir.join("conv.pcap");
        let out1 = dir.join("conv-imp2.pcapng");
        let out2 = dir.join("conv-editcap.pcapng");
        let mut set = ConvSet {
            name: name.into(),
            ..ConvSet::default()
        };
        let r = (|| {
            set.records = record_log(dir, &log, n, sizes)?;
            run_tool(
                &conv,
                &[log.as_os_str(), "-o".as_ref(), pcap.as_os_str()],
                Duration::from_secs(300),
            )?;
            for round in 0..plan.conv_rounds {
                let mut ti = None;
                let mut te = None;
                for k in 0..2 {
                    if (round + k) % 2 == 0 {
                        let t = run_tool(
                            &conv,
                            &[log.as_os_str(), "-o".as_ref(), out1.as_os_str()],
                            Duration::from_secs(300),
                        )?;
                        set.imp2_bytes = file_len(&out1);
                        let _ = std::fs::remove_file(&out1);
                        ti = Some(t);
                    } else if let Some(e) = &editcap {
                        let t = run_tool(
                            e,
                            &[
                                "-F".as_ref(),
                                "pcapng".as_ref(),
                                pcap.as_os_str(),
                                out2.as_os_str(),
                            ],
                            Duration::from_secs(300),
                        )?;
                        set.editcap_bytes = file_len(&out2);
                        let _ = std::fs::remove_file(&out2);
                        te = Some(t);
                    }
                }
                if let Some(t) = ti {
                    set.imp2_s.push(t);
                    set.imp2_gbps.push(set.imp2_bytes as f64 / t / 1e9);
                    if let Some(e) = te {
                        set.editcap_s.push(e);
                        set.editcap_gbps.push(set.editcap_bytes as f64 / e / 1e9);
                        set.speedup.push(e / t);
                    }
                }
            }
            Ok::<(), String>(())
        })();
        if let Err(e) = r {
            c.errors.push(e);
        }
        for p in [&log, &pcap, &out1, &out2] {
            let _ = std::fs::remove_file(p);
        }
        c.sets.push(set);
    }
    c
}

pub(super) fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

pub(super) fn editcap_version() -> String {
    Command::new("editcap")
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "editcap".into())
}

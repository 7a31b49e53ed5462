//! Log append bandwidth (benches/examples/append_bandwidth.rs), measuring.

use super::*;

#[derive(Debug, Default)]
pub(super) struct Append {
    /// (method, append GB/s per round, CPU GB/s per round)
    pub(super) methods: Vec<(String, M, M)>,
    pub(super) error: Option<String>,
}

pub(super) fn append(dir: &Path, plan: &Plan) -> Append {
    let mut a = Append::default();
    let exe = crate::bin_dir().join("examples").join("append_bandwidth");
    let out = Command::new(&exe)
        .arg(dir)
        .arg(plan.append_mib.to_string())
        .arg(plan.append_rounds.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let out = match out {
        Ok(c) => wait(c, Duration::from_secs(900)),
        Err(e) => {
            a.error = Some(format!("{}: {e}", exe.display()));
            return a;
        }
    };
    if !out.ok {
        a.error = Some(format!("append_bandwidth failed: {}", out.stderr.trim()));
        return a;
    }
    // Per-run lines sit between the column header and "median of".
    let mut on = false;
    for line in out.stdout.lines() {
        if line.starts_with("method") {
            on = true;
            continue;
        }
        if line.trim().is_empty() || line.starts_with("median") {
            on = false;
            continue;
        }
        if !on {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 {
            continue;
        }
        let name = f[..f.len() - 4].join(" ");
        let (Ok(gbps), Ok(cpu)) = (f[f.len() - 4].parse(), f[f.len() - 3].parse()) else {
            continue;
        };
        match a.methods.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, g, c)) => {
                g.push(gbps);
                c.push(cpu);
            }
            None => {
                let (mut g, mut c) = (M::default(), M::default());
                g.push(gbps);
                c.push(cpu);
                a.methods.push((name, g, c));
            }
        }
    }
    if a.methods.is_empty() {
        a.error = Some(format!("no results in: {}", out.stdout.trim()));
    }
    a
}

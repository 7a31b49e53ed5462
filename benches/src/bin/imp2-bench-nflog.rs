//! imp2-bench-nflog: the NFLOG side-by-side benchmark of issue 6 on its
//! own: `imp2-record --source nflog:G` vs `tcpdump -w` vs `dumpcap -w` vs
//! ulogd2 (NFLOG in, PCAP out) on the same veth flood, in one run. Prints
//! the Markdown section (and writes it with `--out`). Normally started
//! through `tools/bench-nflog.sh`, which installs the tools and builds
//! everything first. Needs root.
//!
//! ```text
//! imp2-bench-nflog [--quick] [--dir SCRATCH] [--out FILE.md]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use imp2_benches::nflog_side;

const USAGE: &str = "imp2-bench-nflog [--quick] [--dir SCRATCH] [--out FILE.md]";

fn main() -> ExitCode {
    let mut quick = false;
    let mut out: Option<PathBuf> = None;
    let mut dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| {
            args.next().map(PathBuf::from).ok_or_else(|| {
                eprintln!("imp2-bench-nflog: {flag} needs a value\nusage: {USAGE}");
                ExitCode::from(2)
            })
        };
        match a.as_str() {
            "--quick" => quick = true,
            "--out" => match value("--out") {
                Ok(v) => out = Some(v),
                Err(code) => return code,
            },
            "--dir" => match value("--dir") {
                Ok(v) => dir = Some(v),
                Err(code) => return code,
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("imp2-bench-nflog: unknown argument {other}\nusage: {USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    // A directory of our own under the scratch base: its capture files
    // are removed with it at the end.
    let base = dir.unwrap_or_else(std::env::temp_dir);
    let scratch = base.join(format!("imp2-bench-nflog-{}", std::process::id()));
    let side = nflog_side::run(&scratch, quick);
    let _ = std::fs::remove_dir_all(&scratch);

    let mut text = nflog_side::render(&side);
    text.push_str("\n| target | measured | goal | verdict |\n|---|---|---|---|\n");
    for (target, measured, goal, ok) in nflog_side::target_rows(&side) {
        let verdict = match ok {
            Some(true) => "met",
            Some(false) => "**MISSED**",
            None => "not measured",
        };
        text.push_str(&format!("| {target} | {measured} | {goal} | {verdict} |\n"));
    }
    print!("{text}");
    if let Some(path) = out {
        if let Err(e) = std::fs::write(&path, &text) {
            eprintln!("imp2-bench-nflog: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
        eprintln!("imp2-bench-nflog: wrote {}", path.display());
    }
    if side.setup_error.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

//! The benchmark report (`imp2-bench-report`): runs the comparisons of issue 5 side by side in one
//! run and writes BENCHMARKS.md (machine, kernel, commands, a table of
//! measured / goal with medians and spread). Normally started through
//! `tools/bench-report.sh`, which builds everything first.
//!
//! ```text
//! imp2-bench-report [--quick] [--out BENCHMARKS.md] [--dir SCRATCH] [--vm | --no-vm]
//! ```
//!
//! Run from the workspace root (the VM test and the append example are
//! found from there). Every load loop is bounded in records and time; all
//! traffic is NETLINK_USERSOCK between local processes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::nflog_side::{self, NflogSide};
use crate::{Loadgen, M, ReceiverKind, bin, netlink_rmem, records_per_batch, signal, wait};
use serde_json::Value;

mod append;
mod burst;
mod conversion;
mod receivers;
mod render;
mod sizes;
mod targets;
#[cfg(test)]
mod tests;
mod vm;

#[allow(unused_imports)] // the siblings take what they need through `use super::*`
use self::{append::*, burst::*, conversion::*, receivers::*, render::*, sizes::*, vm::*};

/// Sizes of the runs; `--quick` is the CI smoke setting (< 2 minutes).
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    pub(super) quick: bool,
    pub(super) rounds: usize,
    pub(super) batched_n: u64,
    pub(super) per_record_n: u64,
    pub(super) append_mib: u64,
    pub(super) append_rounds: usize,
    pub(super) size_n: u64,
    pub(super) conv_small_n: u64,
    pub(super) conv_mix_n: u64,
    pub(super) conv_rounds: usize,
    pub(super) burst_rcvbuf_mib: u64,
    pub(super) burst_rounds: usize,
    pub(super) vm: bool,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                rounds: 3,
                batched_n: 1_000_000,
                per_record_n: 100_000,
                append_mib: 256,
                append_rounds: 3,
                size_n: 100_000,
                conv_small_n: 300_000,
                conv_mix_n: 100_000,
                conv_rounds: 3,
                burst_rcvbuf_mib: 8,
                burst_rounds: 3,
                vm: false,
            }
        } else {
            Plan {
                quick,
                rounds: 7,
                batched_n: 4_000_000,
                per_record_n: 300_000,
                append_mib: 1024,
                append_rounds: 5,
                size_n: 1_000_000,
                conv_small_n: 2_000_000,
                conv_mix_n: 500_000,
                conv_rounds: 5,
                burst_rcvbuf_mib: 32,
                burst_rounds: 5,
                vm: true,
            }
        }
    }
}

pub(super) fn json(s: &str, what: &str) -> Result<Value, String> {
    serde_json::from_str(s.trim()).map_err(|e| format!("{what} JSON: {e}: {}", s.trim()))
}

pub(super) fn num(v: &Value, path: &[&str]) -> f64 {
    let mut x = v;
    for k in path {
        x = &x[*k];
    }
    x.as_f64().unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------
// Machine facts

pub(super) fn sh(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub(super) fn machine(dir: &Path) -> String {
    let cpu = sh("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1");
    let mem = sh("awk '/MemTotal/ { printf \"%.1f GiB\", $2 / 1048576 }' /proc/meminfo");
    format!(
        "- CPU: {cpu}, {} logical CPUs (shared with other work: compare ratios within this run, not absolute times across runs)\n\
         - caches: L2 {}, L3 {} (imp2-record sizes its receive ring to half the L2 of a core)\n\
         - memory: {mem}; load average at start: {}\n\
         - kernel: `{}`\n\
         - scratch file system: `{}` ({})\n\
         - toolchain: {}; commit {}{}\n\
         - date: {}\n",
        sh("nproc"),
        sh("lscpu | sed -n 's/^L2 cache:[[:space:]]*//p'"),
        sh("lscpu | sed -n 's/^L3 cache:[[:space:]]*//p'"),
        sh("cut -d' ' -f1-3 /proc/loadavg"),
        sh("uname -srm"),
        dir.display(),
        sh(&format!(
            "df -T {} | awk 'NR == 2 {{ print $2 \" on \" $1 }}'",
            dir.display()
        )),
        sh("rustc --version"),
        sh("git rev-parse --short HEAD 2>/dev/null"),
        if sh("git status --porcelain 2>/dev/null | head -n1").is_empty() {
            ""
        } else {
            " (with uncommitted changes)"
        },
        sh("date -u '+%Y-%m-%d %H:%M UTC'"),
    )
}

/// The `imp2-bench-report` command: parses the arguments, measures, writes
/// the report.
pub fn main() {
    let mut quick = false;
    let mut out = PathBuf::from("BENCHMARKS.md");
    let mut dir: Option<PathBuf> = None;
    let mut vm_flag: Option<bool> = None;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--out" => out = PathBuf::from(args.next().expect("--out FILE")),
            "--dir" => dir = Some(PathBuf::from(args.next().expect("--dir DIR"))),
            "--vm" => vm_flag = Some(true),
            "--no-vm" => vm_flag = Some(false),
            "--only" => only = Some(args.next().expect("--only LIST")),
            "-h" | "--help" => {
                println!(
                    "imp2-bench-report [--quick] [--out BENCHMARKS.md] [--dir SCRATCH] [--vm | --no-vm]\n                   [--only receivers,append,sizes,conversion,burst,nflog,vm]"
                );
                return;
            }
            other => {
                eprintln!("imp2-bench-report: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let mut plan = Plan::new(quick);
    if let Some(v) = vm_flag {
        plan.vm = v;
    }
    let root = std::env::current_dir().expect("cwd");
    let base = dir.unwrap_or_else(std::env::temp_dir);
    let scratch = base.join(format!("imp2-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let started = Instant::now();
    let step = |what: &str| {
        eprintln!(
            "imp2-bench-report: {what} ({:.0} s)",
            started.elapsed().as_secs_f64()
        )
    };

    let on = |name: &str| {
        only.as_ref()
            .is_none_or(|l| l.split(',').any(|x| x == name))
    };
    let skipped = || Some("skipped (--only)".to_string());
    step("receivers: batched vs --per-record vs bare");
    let r = if on("receivers") {
        receivers(&scratch, &plan)
    } else {
        RecvResults::default()
    };
    step("log append");
    let a = if on("append") {
        append(&scratch, &plan)
    } else {
        Append {
            error: skipped(),
            ..Append::default()
        }
    };
    step("bytes per packet");
    let s = if on("sizes") {
        sizes(&scratch, &plan)
    } else {
        Sizes {
            error: skipped(),
            ..Sizes::default()
        }
    };
    step("conversion");
    let c = if on("conversion") {
        conversion(&scratch, &plan)
    } else {
        Conv::default()
    };
    step("burst absorption");
    let b = if on("burst") {
        burst(&scratch, &plan)
    } else {
        Burst::default()
    };
    step("NFLOG source vs tcpdump, dumpcap, ulogd2");
    let n = on("nflog").then(|| nflog_side::run(&scratch, plan.quick));
    step(if plan.vm {
        "VM test (load,perf,tcpdump)"
    } else {
        "VM test: last result"
    });
    let v = if on("vm") {
        vm(&root, &scratch, &plan)
    } else {
        Vm {
            note: skipped(),
            ..Vm::default()
        }
    };
    let took = started.elapsed();
    let results = Results {
        r: &r,
        a: &a,
        s: &s,
        c: &c,
        v: &v,
        b: &b,
        n: n.as_ref(),
    };
    let text = render(&plan, &base, took, &results);
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::write(&out, &text).expect("write the report");
    print!("{text}");
    step(&format!("wrote {}", out.display()));
}

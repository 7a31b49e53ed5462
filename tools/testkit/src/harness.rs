//! Running the workspace's binaries against each other, for the recorder's
//! end-to-end tests and the benchmarks: finding (and building) a binary,
//! starting imp2-loadgen and waiting until it listens, waiting for a child
//! with a time bound, signalling it. Every wait is bounded; a child that
//! overstays is killed.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Directory of the workspace binaries built in the same profile as the
/// running executable (`target/<profile>`, also from `deps/` or
/// `examples/` below it), or `IMP2_BIN_DIR` when set.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("IMP2_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir
        .file_name()
        .is_some_and(|n| n == "deps" || n == "examples")
    {
        dir.pop();
    }
    dir
}

/// Path of a workspace binary. The first call in a process builds the
/// recorder, the tools, the test kit's and the benchmark binaries in the running
/// executable's profile (a no-op when they are fresh), so that a test run
/// of one package never uses another package's stale binary; not done
/// when `IMP2_BIN_DIR` names prebuilt binaries.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let dir = bin_dir();
    BUILT.get_or_init(|| {
        if std::env::var_os("IMP2_BIN_DIR").is_some() {
            return;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--bins"]).args([
            "-p",
            "imp2-tools",
            "-p",
            "imp2-record",
            "-p",
            "imp2-testkit",
            "-p",
            "imp2-benches",
        ]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .expect("cannot run cargo to build the binaries");
        assert!(status.success(), "building the workspace binaries failed");
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} not built", path.display());
    path
}

/// How a child ended, with everything it printed.
#[derive(Debug)]
pub struct Output {
    /// Exited with status 0.
    pub ok: bool,
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal that ended it, if one did.
    pub signal: Option<i32>,
    /// It overstayed its time and was killed.
    pub timed_out: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `cmd` to its end, which must be a success: panics with its status,
/// stdout and stderr otherwise.
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Waits for `child` at most `timeout`, then kills it (`timed_out`). Its
/// piped stdout and stderr are read meanwhile by two threads, so a child
/// printing more than a pipe holds cannot stall.
pub fn wait(mut child: Child, timeout: Duration) -> Output {
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
        }
    };
    let mut stderr = err.join().unwrap_or_default();
    if timed_out {
        stderr.push_str(&format!("\n(killed: still running after {timeout:?})"));
    }
    Output {
        ok: !timed_out && status.is_some_and(|s| s.success()),
        code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        timed_out,
        stdout: out.join().unwrap_or_default(),
        stderr,
    }
}

/// A running `imp2-loadgen --unit 2 --json` and its netlink port id.
#[derive(Debug)]
pub struct Loadgen {
    /// The process.
    pub child: Child,
    /// Its port id (the recorder's `--peer`).
    pub port: u32,
}

impl Loadgen {
    /// Starts the loadgen with `args` on NETLINK_USERSOCK and waits (at most
    /// 20 s) until it listens: it writes its port id to a ready file in
    /// `dir` then. Panics (with its stderr) if it exits or never gets there.
    pub fn start<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Loadgen {
        let ready = dir.join(format!("loadgen-{}.ready", std::process::id()));
        let _ = std::fs::remove_file(&ready);
        let mut child = Command::new(bin("imp2-loadgen"))
            .args(["--unit", "2", "--json", "--ready-file"])
            .arg(&ready)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start imp2-loadgen");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Some(p) = std::fs::read_to_string(&ready)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            {
                break p;
            }
            if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let out = wait(child, Duration::from_secs(5));
                panic!("imp2-loadgen did not become ready: {}", out.stderr);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let _ = std::fs::remove_file(&ready);
        Loadgen { child, port }
    }

    /// Waits (bounded) for the loadgen to exit; returns its JSON report.
    /// Panics if it fails or prints no JSON.
    pub fn finish(self, timeout: Duration) -> serde_json::Value {
        let out = wait(self.child, timeout);
        assert!(out.ok, "imp2-loadgen failed: {}", out.stderr);
        serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("imp2-loadgen JSON: {e}: {}", out.stdout))
    }
}

/// Sends `signal` to a child (which cannot fail for a child we own and
/// have not reaped: a failure is a bug, and panics).
pub fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on the pid of a child we own and have not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({}, {signal}) failed", child.id());
}

/// Runs `program args` to completion (at most 30 s); its stdout, or an
/// error naming the command and quoting its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    let out = wait(child, Duration::from_secs(30));
    if out.ok {
        Ok(out.stdout)
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            out.stderr.trim()
        ))
    }
}

//! Running the real binaries against each other over real netlink sockets.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Path of a workspace binary, building it once if this test run has not.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf(); // target/<profile>
    let path = dir.join(name);
    BUILT.get_or_init(|| {
        // `cargo test --workspace` builds every binary; `-p imp2-record`
        // alone does not build the tools, so build them here.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "imp2-tools", "-p", "imp2-record"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cannot run cargo to build the tools");
        assert!(status.success(), "building imp2-tools failed");
    });
    assert!(path.exists(), "{} not built", path.display());
    path
}

/// A running imp2-loadgen with its port id.
pub struct Loadgen {
    pub child: Child,
    pub port: u32,
}

impl Loadgen {
    /// Starts `imp2-loadgen --unit 2 --json --ready-file ... ARGS` and waits
    /// until it listens.
    pub fn start(dir: &Path, args: &[&str]) -> Loadgen {
        let ready = dir.join(format!("loadgen-{}.ready", std::process::id()));
        let _ = std::fs::remove_file(&ready);
        let child = Command::new(bin("imp2-loadgen"))
            .args(["--unit", "2", "--json", "--ready-file"])
            .arg(&ready)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start imp2-loadgen");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(s) = std::fs::read_to_string(&ready) {
                if let Ok(p) = s.trim().parse::<u32>() {
                    break p;
                }
            }
            assert!(
                Instant::now() < deadline,
                "imp2-loadgen did not become ready"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        Loadgen { child, port }
    }

    /// Waits (bounded) for exit and returns its JSON report.
    pub fn finish(self, timeout: Duration) -> Value {
        let out = wait_output(self.child, timeout, "imp2-loadgen");
        assert!(out.status_ok, "imp2-loadgen failed: {}", out.stderr);
        serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("loadgen JSON: {e}: {}", out.stdout))
    }
}

/// Output of a finished child.
pub struct Output {
    pub status_ok: bool,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Waits for `child` at most `timeout` (then kills it and fails).
pub fn wait_output(mut child: Child, timeout: Duration, what: &str) -> Output {
    use std::os::unix::process::ExitStatusExt;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status_ok: status.success(),
        code: status.code(),
        signal: status.signal(),
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}

/// Starts `imp2-record --unit 2 --peer PORT -o LOG --json -q ARGS`.
pub fn start_recorder(port: u32, log: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(bin("imp2-record"));
    cmd.args([
        "--unit",
        "2",
        "--peer",
        &port.to_string(),
        "--json",
        "-q",
        "-o",
    ])
    .arg(log)
    .args(args)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("cannot start imp2-record")
}

/// Sends `signal` to `child`.
pub fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on the pid of a child we own and have not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill failed");
}

/// Parses the recorder's JSON summary.
pub fn recorder_json(out: &Output) -> Value {
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "recorder JSON: {e}\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        )
    })
}

/// Runs a tool to completion (bounded), returning its output.
pub fn run_tool(name: &str, args: &[&str]) -> Output {
    let child = Command::new(bin(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    wait_output(child, Duration::from_secs(120), name)
}

/// Digest of every record in a log, read directly with the library.
pub fn log_digest(path: &Path) -> (imp2_format::RecordDigest, Option<String>) {
    let reader = imp2_format::log::LogReader::open(path).expect("log opens");
    let mut digest = imp2_format::RecordDigest::default();
    let mut error = None;
    for event in reader.events() {
        match event {
            Ok(imp2_format::log::LogEvent::Record(r)) => digest.add(&r),
            Ok(_) => {}
            Err(e) => error = Some(e.to_string()),
        }
    }
    (digest, error)
}

/// `u64` field of a JSON object.
pub fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer `{key}` in {v}"))
}

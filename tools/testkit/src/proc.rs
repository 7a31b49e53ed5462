//! A child process for benchmarks: reaped with `wait4` for its CPU time,
//! its stderr collected meanwhile, stopped by a signal with a time bound.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sys::seconds;

/// How a process ended.
#[derive(Clone, Copy, Debug)]
pub struct Exit {
    /// Exited with status 0.
    pub ok: bool,
    /// User + system CPU seconds (wait4's rusage).
    pub cpu_s: f64,
}

/// A running child reaped with `wait4` (for its rusage), its stderr
/// collected by a thread (readiness lines, drop reports). Killed and reaped
/// on drop if still running.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    name: &'static str,
    stderr: Arc<Mutex<String>>,
    exit: Option<Exit>,
}

impl Proc {
    /// Starts `cmd` with `stdout`, its stderr piped and collected.
    pub fn spawn(mut cmd: Command, name: &'static str, stdout: Stdio) -> Result<Proc, String> {
        let mut child = cmd
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            // Ends at EOF, when the process exits: never joined, so a
            // descendant holding the pipe cannot block the benchmark.
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                    s.push_str(&line);
                    s.push('\n');
                }
            });
        }
        Ok(Proc {
            child,
            name,
            stderr,
            exit: None,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reaps the child if it has exited (`block`: waits for it).
    pub fn reap(&mut self, block: bool) -> bool {
        if self.exit.is_some() {
            return true;
        }
        let mut status = 0;
        // SAFETY: rusage is plain data that wait4 fills in.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = if block { 0 } else { libc::WNOHANG };
        // SAFETY: wait4 on the pid of our own unreaped child, with valid
        // pointers to a status word and a rusage.
        let r = unsafe { libc::wait4(self.pid(), &mut status, flags, &mut ru) };
        if r != self.pid() {
            return false;
        }
        self.exit = Some(Exit {
            ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            cpu_s: seconds(ru.ru_utime) + seconds(ru.ru_stime),
        });
        true
    }

    /// User + system clock ticks so far from /proc/PID/stat (coarse: only
    /// to see whether the process is still working).
    pub fn ticks(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the parenthesised command name; utime and stime are
        // the 14th and 15th of the whole line.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    }

    /// Sends `sig`, waits (bounded) for the exit; SIGKILL on timeout.
    pub fn stop(&mut self, sig: i32, timeout: Duration) -> Result<Exit, String> {
        if !self.reap(false) {
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe {
                libc::kill(self.pid(), sig);
            }
        }
        let deadline = Instant::now() + timeout;
        while !self.reap(false) {
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "{} did not exit within {} s of the signal (killed): {}",
                    self.name,
                    timeout.as_secs(),
                    self.stderr().trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Kept (not taken): a stored exit is what tells `kill` and `drop`
        // that the pid is reaped and must not be signalled again.
        self.exit
            .ok_or_else(|| format!("{}: no exit status", self.name))
    }

    /// Kills (SIGKILL) and reaps it, unless it was reaped.
    pub fn kill(&mut self) {
        if !self.reap(false) {
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe {
                libc::kill(self.pid(), libc::SIGKILL);
            }
            self.reap(true);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

//! The final summary of a run, for people (stderr) and as one JSON object
//! (stdout, `--json`).

use std::fmt::Write;

use imp2_format::log::{StopCause, StopReason};
use serde_json::{Map, Value, json};

use crate::progress::{packet_rate, plural};
use crate::session::SessionSummary;

/// The summary for people: what was recorded, how fast, what was lost, and
/// where it went.
pub fn human(s: &SessionSummary) -> String {
    let f = &s.footer;
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "imp2-record: {} {} ({} bytes captured) in {:.3} s, {}, {} {} via {}; stopped by {}",
        f.records,
        plural(f.records, "packet", "packets"),
        f.captured_bytes,
        secs,
        packet_rate(f.records as f64 / secs),
        s.batches,
        plural(s.batches, "batch", "batches"),
        s.io,
        stopped_by(&s.stop)
    );
    let lost = f.losses.records();
    if f.losses.is_zero() {
        let _ = writeln!(out, "imp2-record: nothing lost");
    } else {
        let causes: Vec<String> = f
            .losses
            .named()
            .iter()
            .filter(|(_, v)| *v != 0)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            out,
            "imp2-record: {lost} {} lost ({})",
            plural(lost, "packet", "packets"),
            causes.join(", ")
        );
    }
    if let Some(m) = &s.last_malformed {
        let _ = writeln!(out, "imp2-record: last malformed message: {m}");
    }
    if s.beyond_count > 0 {
        let _ = writeln!(
            out,
            "imp2-record: {} {} arrived after the count was reached (not written)",
            s.beyond_count,
            plural(s.beyond_count, "packet", "packets"),
        );
    }
    if s.stop_requested && !s.unregistered {
        let _ = writeln!(
            out,
            "imp2-record: the producer did not acknowledge UNREGISTER"
        );
    }
    let _ = writeln!(out, "imp2-record: wrote {}", s.output.display());
    out
}

/// What stopped the run, in the words of the summary's "stopped by"
/// (also the JSON's `stopped_by`, which scripts may match): `signal
/// SIGINT`, `count 1000 reached`, `duration 60 s reached`, `write error:
/// No space left on device`, `receive error: ...`.
fn stopped_by(stop: &StopReason) -> String {
    let d = &stop.detail;
    match stop.cause {
        StopCause::Signal => format!("signal {d}"),
        StopCause::Count => format!("count {d} reached"),
        StopCause::Duration => format!("duration {d} reached"),
        StopCause::WriteError => format!("write error: {d}"),
        StopCause::ReceiveError => format!("receive error: {d}"),
        // The recorder writes no cause it does not know.
        StopCause::Other(_) => stop.to_string(),
    }
}

/// The summary as one JSON object.
pub fn json(s: &SessionSummary) -> Value {
    let f = &s.footer;
    let mut losses = Map::new();
    for (k, v) in f.losses.named() {
        losses.insert(k.to_string(), json!(v));
    }
    losses.insert("records_lost".into(), json!(f.losses.records()));
    let mut object = json!({
        "output": s.output.display().to_string(),
        "records": f.records,
        "captured_bytes": f.captured_bytes,
        "original_bytes": f.original_bytes,
        "first_ns": f.first_ns,
        "last_ns": f.last_ns,
        "batches": s.batches,
        "received_bytes": s.received_bytes,
        "beyond_count": s.beyond_count,
        "elapsed_s": s.elapsed.as_secs_f64(),
        "cpu_user_s": s.cpu.0.as_secs_f64(),
        "cpu_sys_s": s.cpu.1.as_secs_f64(),
        "io": s.io,
        "receive_buffers": s.receive_buffers.0,
        "receive_buffer_bytes": s.receive_buffers.1,
        "write": s.write,
        "unregistered": s.unregistered,
        "producer_gone": s.producer_gone,
        "stopped_by": stopped_by(&s.stop),
        "stop": {
            "cause": s.stop.cause.name(),
            "code": s.stop.cause.code(),
            "detail": s.stop.detail,
        },
        "last_malformed": s.last_malformed,
        "write_error": s.write_error,
        "losses": losses,
    });
    if let Value::Object(map) = &mut object {
        for (k, v) in &s.source_fields {
            map.insert((*k).to_string(), v.clone());
        }
    }
    object
}

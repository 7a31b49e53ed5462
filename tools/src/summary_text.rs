//! `imp2-info`'s human report of a [`LogSummary`], and why the recording
//! ended.

use std::collections::BTreeMap;
use std::path::Path;

use imp2_format::export::{format_time_ns, losses_summary_with_damage};
use serde::Serialize;

use crate::summary::{FooterState, LogSummary};

impl LogSummary {
    /// The human report, several lines.
    pub fn to_text(&self, path: &Path) -> String {
        let h = &self.header;
        let mut out = String::new();
        let mut line = |key: &str, value: String| {
            out += &format!("{key:<12}{value}\n");
        };
        line("file", path.display().to_string());
        line("format", format!("imp2 log {}", h.version));
        line("source", or_unknown(&h.source));
        line("host", or_unknown(&h.hostname));
        line("kernel", or_unknown(&h.kernel_release));
        line("created", format!("{} ({} ns)", h.created, h.created_ns));
        line(
            "snaplen",
            format!(
                "{} bytes, timestamps precise to 10^-{} s",
                h.snaplen, h.tsresol_digits
            ),
        );
        if let Some(f) = &self.filter {
            let what = f
                .expression
                .as_ref()
                .map_or(String::new(), |e| format!("`{e}`: "));
            line(
                "filter",
                format!(
                    "{what}{} of {} records match; the counts below are of those",
                    f.matched, f.examined
                ),
            );
        }
        line("records", self.records.to_string());
        match (self.first_ns, self.last_ns) {
            (Some(f), Some(l)) => {
                line("first", format!("{} ({f} ns)", format_time_ns(f)));
                line("last", format!("{} ({l} ns)", format_time_ns(l)));
                let span = l - f;
                line(
                    "span",
                    format!("{}.{:09} s", span / 1_000_000_000, span % 1_000_000_000),
                );
            }
            _ => line("first", "- (no records)".into()),
        }
        line(
            "bytes",
            format!(
                "{} captured, {} original",
                self.captured_bytes, self.original_bytes
            ),
        );
        if self.interfaces.is_empty() {
            line("interfaces", "none".into());
        }
        for (i, iface) in self.interfaces.iter().enumerate() {
            line(
                if i == 0 { "interfaces" } else { "" },
                format!(
                    "{} (ifindex {}): {} records",
                    iface.name, iface.ifindex, iface.records
                ),
            );
        }
        line("hooks", counts(&self.hooks));
        line("families", counts(&self.families));
        line("protocols", counts(&self.protocols));
        line("losses", self.losses_text());
        line("ended", self.ended_text());
        line("integrity", self.integrity.describe());
        out
    }
}

impl LogSummary {
    /// The `losses` line: the recorder's losses and the records lost to
    /// skipped damage, or `none`.
    fn losses_text(&self) -> String {
        let lost_to_damage = self.integrity.lost_to_damage.unwrap_or(0);
        let unknown_damage =
            !self.integrity.skipped.is_empty() && self.integrity.lost_to_damage.is_none();
        let mut s = if self.losses_raw.is_zero() && lost_to_damage == 0 {
            if unknown_damage {
                String::new()
            } else {
                "none".into()
            }
        } else {
            losses_summary_with_damage(&self.losses_raw, lost_to_damage)
        };
        if unknown_damage {
            if !s.is_empty() {
                s += "; ";
            }
            s += "an unknown number of records lost to damage (the footer, which counts them, \
                  was not found)";
        }
        s
    }

    /// The `ended` line: the footer's stop reason, or why there is none.
    fn ended_text(&self) -> String {
        let i = &self.integrity;
        match (&self.stop, i.footer) {
            (Some(stop), _) => stop.to_string(),
            (None, FooterState::Read) if self.before_stop_reasons => {
                "not recorded (a log before format 1.2)".into()
            }
            (None, FooterState::Read) => "not recorded".into(),
            (None, FooterState::Absent) => "- (no footer)".into(),
            (None, FooterState::NotReached) => {
                let at = i.error.as_ref().map_or(0, |e| e.offset);
                let what = if i.torn { "torn tail" } else { "damage" };
                let hint = if i.torn {
                    ""
                } else {
                    "; --skip-damaged reads on to it"
                };
                format!(
                    "unknown: reading stopped at the {what} at byte {at}, before the footer \
                     (the header says the log was closed{hint})"
                )
            }
            (None, FooterState::Lost) => "unknown: the log was closed, but its footer was not \
                                          found (it was in the skipped damage)"
                .into(),
        }
    }
}

/// Why a recording ended (the footer's stop reason): `"stop":
/// {"cause":"signal","code":1,"detail":"SIGTERM"}` in the JSON.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StopSummary {
    /// `signal`, `count`, `duration`, `write_error`, `receive_error`, or
    /// `unknown` for a cause of a later format version.
    pub cause: &'static str,
    /// The cause's number in the footer (FORMAT.md section 7), which tells
    /// unknown causes apart.
    pub code: u64,
    /// The particulars: the signal's name, the count or duration asked
    /// for, the error's text.
    pub detail: String,
}

impl StopSummary {
    pub(crate) fn of(stop: &imp2_format::log::StopReason) -> StopSummary {
        StopSummary {
            cause: stop.cause.name(),
            code: stop.cause.code(),
            detail: stop.detail.clone(),
        }
    }
}

/// One line for people, e.g. "stopped by SIGTERM", "write error: No space
/// left on device".
impl std::fmt::Display for StopSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use imp2_format::log::{StopCause, StopReason};
        match StopCause::from_code(self.code) {
            Some(cause) => StopReason {
                cause,
                detail: self.detail.clone(),
            }
            .fmt(f),
            None => f.write_str("not recorded"),
        }
    }
}

fn or_unknown(s: &str) -> String {
    if s.is_empty() {
        "(unknown)".into()
    } else {
        s.to_string()
    }
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "-".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

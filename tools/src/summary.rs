//! The summary of a log that `imp2-info` reports: what [`LogSummary`]
//! holds and how one walk over the log fills it (its text form is in
//! `summary_text.rs`).

use std::collections::{BTreeMap, HashMap};

use imp2_format::export::{format_time_ns, places, read_error_reason};
use imp2_format::filter::{Selection, Selector};
use imp2_format::log::{Footer, LogEvent, LogHeader, LogReader, Losses, OnDamage, ReadErrorKind};
use imp2_format::record::protocol_name;
use serde::Serialize;

use crate::summary_text::StopSummary;

/// Header fields of a summary.
#[derive(Debug, Clone, Serialize)]
pub struct HeaderSummary {
    /// Format version, `major.minor`.
    pub version: String,
    /// What produced the records.
    pub source: String,
    /// Host name of the recording machine.
    pub hostname: String,
    /// `uname -r` of the recording machine.
    pub kernel_release: String,
    /// When recording started, ns since the epoch.
    pub created_ns: u64,
    /// Same, UTC ISO 8601.
    pub created: String,
    /// Snap length, bytes.
    pub snaplen: u32,
    /// Timestamp precision in decimal digits (9 = ns).
    pub tsresol_digits: u8,
}

/// Records seen on one interface.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InterfaceSummary {
    /// Kernel ifindex.
    pub ifindex: u32,
    /// Name from the log (the latest one if it changed), or `if<N>` when
    /// the log never named it (the name export gives it too).
    pub name: String,
    /// Records captured on it.
    pub records: u64,
}

/// A damaged frame or header.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorSummary {
    /// File offset of the damage.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// What became of the footer (the frame a cleanly closed log ends with),
/// `"footer"` in the JSON.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FooterState {
    /// Read and verified.
    Read,
    /// The log has none: reading reached the end of the committed prefix
    /// without one, or stopped at damage in a log whose header says the
    /// recording never closed.
    Absent,
    /// Reading stopped (at damage, or at a torn tail) before the end of a
    /// log whose header says it was closed: the footer, if it survived, lies
    /// after the place reading stopped and was not read.
    NotReached,
    /// Damage was skipped and no footer followed, in a log whose header
    /// says it was closed: the footer was in the damaged bytes.
    Lost,
}

/// How sound the log is.
#[derive(Debug, Clone, Serialize)]
pub struct Integrity {
    /// Whether the log was closed cleanly: `true` when its footer was read,
    /// `false` when it has none, `null` when that is unknown (see
    /// [`Integrity::footer`]: not reached, or lost to damage).
    pub closed: Option<bool>,
    /// What became of the footer.
    pub footer: FooterState,
    /// Bytes past the committed length, ignored: space a running recorder
    /// reserved, or the uncommitted tail of one that died.
    pub uncommitted_bytes: u64,
    /// The first damaged frame, which ends reading (unless damage is
    /// skipped), or a torn tail.
    pub error: Option<ErrorSummary>,
    /// Damaged stretches skipped (`--skip-damaged`), in file order.
    pub skipped: Vec<SkippedSummary>,
    /// Records lost in the skipped stretches: the footer's count less the
    /// records read (also in [`LogSummary::losses`]); `null` when nothing was
    /// skipped or the footer was lost.
    pub lost_to_damage: Option<u64>,
    /// When closed: whether the footer's totals match the records read;
    /// `null` when there is no footer, or when damage was skipped (the
    /// totals then count what was in it too).
    pub footer_matches: Option<bool>,
    /// Whether `error` is a torn tail, which skipping cannot get past.
    #[serde(skip)]
    pub(crate) torn: bool,
}

/// A damaged stretch that was skipped.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SkippedSummary {
    /// File offset of the damaged frame.
    pub offset: u64,
    /// Bytes skipped from there to the next intact frame.
    pub len: u64,
    /// Why the frame was rejected.
    pub reason: String,
}

impl Integrity {
    /// The integrity problem `--verify` fails on, if any: a damaged frame or
    /// header, a torn tail (file shorter than its committed length), or a
    /// footer that disagrees with the records. An unclosed log and bytes
    /// past the committed length are normal (a recording in progress, or
    /// one whose recorder died: every committed frame is still sound).
    pub fn problem(&self) -> Option<String> {
        if let Some(first) = self.skipped.first() {
            let bytes: u64 = self.skipped.iter().map(|s| s.len).sum();
            let lost = match self.lost_to_damage {
                Some(n) => format!("{n} records lost to it (by the footer)"),
                None => {
                    "the records in it are lost (how many is unknown without the footer)".into()
                }
            };
            let mut p = format!(
                "damaged frames skipped: {bytes} bytes in {}, the first at byte {}: \
                 damaged frame: {}; {lost}",
                places(self.skipped.len()),
                first.offset,
                first.reason
            );
            if let Some(e) = &self.error {
                p += &format!("; then {} at byte {}", e.reason, e.offset);
            }
            return Some(p);
        }
        if let Some(e) = &self.error {
            return Some(format!("{} at byte {}", e.reason, e.offset));
        }
        if self.footer_matches == Some(false) {
            return Some("the footer's totals do not match the records in the log".into());
        }
        None
    }

    /// One line for humans.
    pub fn describe(&self) -> String {
        let mut s = match (self.problem(), self.closed) {
            (Some(p), _) if !self.skipped.is_empty() => {
                format!("damaged: {p}; every intact frame was read")
            }
            (Some(p), _) if self.torn => format!("damaged: {p}"),
            (Some(p), _) if self.error.is_some() => format!(
                "damaged: {p}; nothing after it was read (--skip-damaged reads on from the \
                 next intact frame)"
            ),
            (Some(p), _) => p,
            (None, Some(true)) => "closed cleanly".into(),
            // Without a problem reading reached the end: the footer is read
            // or absent, never unknown.
            (None, _) => {
                "not closed (recording in progress, or the recorder died); every committed \
                 frame is sound"
                    .into()
            }
        };
        if self.uncommitted_bytes > 0 {
            s += &format!(
                "; {} uncommitted bytes past the committed length (reserved space or a \
                 frame never committed, ignored; `imp2-info --trim` cuts them)",
                self.uncommitted_bytes
            );
        }
        s
    }
}

/// Everything `imp2-info` reports about a log; its JSON form is the
/// `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct LogSummary {
    /// The log header.
    pub header: HeaderSummary,
    /// With a filter (expression, `-i`, `--hook`, `--from`/`--to`, `-c`):
    /// what it kept. The counts that follow are then of those records;
    /// `integrity` covers every record.
    pub filter: Option<FilterSummary>,
    /// Records read (with a filter: records it kept).
    pub records: u64,
    /// Earliest record, ns since the epoch (`null` without records).
    pub first_ns: Option<u64>,
    /// Latest record, ns since the epoch (`null` without records).
    pub last_ns: Option<u64>,
    /// Captured bytes of all records.
    pub captured_bytes: u64,
    /// Original bytes of all records.
    pub original_bytes: u64,
    /// Every interface named in the log or seen in a record, by ifindex.
    pub interfaces: Vec<InterfaceSummary>,
    /// Records by hook (`pre`, `out`, `hook<N>`).
    pub hooks: BTreeMap<String, u64>,
    /// Records by family (`ipv4`, `ipv6`, `family<N>`).
    pub families: BTreeMap<String, u64>,
    /// Records by transport protocol (`tcp`, `udp`, ..., `unknown`, or the
    /// number for one without a name).
    pub protocols: BTreeMap<String, u64>,
    /// Loss counters by name (see `Losses::named`), `lost_to_damage`
    /// (records in damaged frames that were skipped, by the footer's count;
    /// left out when that count is unknown) and `records_lost`, the records
    /// lost in all (the recorder's and to damage).
    pub losses: BTreeMap<String, u64>,
    /// Soundness of the file.
    pub integrity: Integrity,
    /// Why the recording ended, as the footer records it (format 1.2);
    /// `null` when the log does not say (no footer, or a footer that did
    /// not record it: every log before 1.2).
    pub stop: Option<StopSummary>,
    #[serde(skip)]
    pub(crate) losses_raw: Losses,
    /// Whether the log predates format 1.2, whose footers say why the run
    /// ended.
    #[serde(skip)]
    pub(crate) before_stop_reasons: bool,
}

/// What a reading filter kept.
#[derive(Debug, Clone, Serialize)]
pub struct FilterSummary {
    /// The filter expression, if one was given.
    pub expression: Option<String>,
    /// Records kept.
    pub matched: u64,
    /// Records read.
    pub examined: u64,
}

fn bump(map: &mut BTreeMap<String, u64>, key: String) {
    *map.entry(key).or_default() += 1;
}

fn protocol_key(protocol: u8) -> String {
    match protocol_name(protocol) {
        "other" => protocol.to_string(),
        name => name.to_string(),
    }
}

fn header_summary(h: &LogHeader, (major, minor): (u16, u16)) -> HeaderSummary {
    HeaderSummary {
        version: format!("{major}.{minor}"),
        source: h.source.clone(),
        hostname: h.hostname.clone(),
        kernel_release: h.kernel_release.clone(),
        created_ns: h.created_ns,
        created: format_time_ns(h.created_ns),
        snaplen: h.snaplen,
        tsresol_digits: h.tsresol_digits,
    }
}

impl LogSummary {
    /// Reads the whole log once and summarises it. Damage is reported in
    /// [`LogSummary::integrity`], not as an error.
    pub fn of(reader: &LogReader) -> LogSummary {
        LogSummary::of_with(reader, OnDamage::Stop)
    }

    /// [`LogSummary::of`], reading past damaged frames with
    /// [`OnDamage::Skip`] (and listing them in the integrity report).
    pub fn of_with(reader: &LogReader, on_damage: OnDamage) -> LogSummary {
        LogSummary::of_selected(reader, on_damage, &Selection::default())
    }

    /// [`LogSummary::of_with`], counting only the records `selection`
    /// keeps ([`LogSummary::filter`] says how many of how many); the
    /// integrity check still covers every record.
    pub fn of_selected(
        reader: &LogReader,
        on_damage: OnDamage,
        selection: &Selection,
    ) -> LogSummary {
        let header = reader.header();
        let all = selection.keeps_all();
        let mut selector = Selector::new(selection, &header.interfaces);
        // Every record, for the footer check; the counts below are of the
        // selected ones.
        let (mut total, mut total_captured, mut total_original) = (0u64, 0u64, 0u64);
        let (mut total_first, mut total_last): (Option<u64>, Option<u64>) = (None, None);
        let mut names: HashMap<u32, String> = HashMap::new();
        for i in &header.interfaces {
            names.insert(i.ifindex, i.name.clone());
        }
        let mut per_if: BTreeMap<u32, u64> = BTreeMap::new();
        let mut records = 0u64;
        let (mut captured, mut original) = (0u64, 0u64);
        let (mut first, mut last): (Option<u64>, Option<u64>) = (None, None);
        let mut hooks = BTreeMap::new();
        let mut families = BTreeMap::new();
        let mut protocols = BTreeMap::new();
        let mut losses = Losses::default();
        let mut footer: Option<Footer> = None;
        let mut error = None;
        let mut skipped = Vec::new();
        let mut torn = false;
        for event in reader.events_with(on_damage) {
            match event {
                Ok(LogEvent::Record(r)) => {
                    total += 1;
                    total_captured += r.data.len() as u64;
                    total_original += u64::from(r.orig_len);
                    total_first = Some(total_first.map_or(r.tstamp_ns, |f| f.min(r.tstamp_ns)));
                    total_last = Some(total_last.map_or(r.tstamp_ns, |l| l.max(r.tstamp_ns)));
                    if !all && !selector.keep(&r) {
                        continue;
                    }
                    records += 1;
                    captured += r.data.len() as u64;
                    original += u64::from(r.orig_len);
                    first = Some(first.map_or(r.tstamp_ns, |f| f.min(r.tstamp_ns)));
                    last = Some(last.map_or(r.tstamp_ns, |l| l.max(r.tstamp_ns)));
                    *per_if.entry(r.ifindex).or_default() += 1;
                    bump(&mut hooks, r.hook.to_string());
                    bump(&mut families, r.family.to_string());
                    bump(&mut protocols, protocol_key(r.protocol));
                }
                Ok(LogEvent::Interface(i)) => {
                    selector.interface(&i);
                    names.insert(i.ifindex, i.name);
                }
                Ok(LogEvent::Losses(delta)) => losses.add(&delta),
                Ok(LogEvent::Footer(f)) => footer = Some(f),
                Ok(LogEvent::Skipped(s)) => skipped.push(SkippedSummary {
                    offset: s.offset,
                    len: s.len,
                    reason: s.reason,
                }),
                Err(e) => {
                    torn = matches!(e.kind, ReadErrorKind::TornTail { .. });
                    error = Some(ErrorSummary {
                        offset: e.offset,
                        reason: read_error_reason(&e.kind),
                    });
                    break;
                }
            }
        }
        let lost_to_damage = footer
            .as_ref()
            .filter(|_| !skipped.is_empty())
            .map(|f| f.records.saturating_sub(total));
        // Reading reached the end of the committed prefix unless it
        // stopped at damage or a tear before it (the error of a closed log
        // without a footer is found at the end).
        let stopped_early = error
            .as_ref()
            .is_some_and(|e| e.offset < reader.committed_len());
        let footer_state = match (&footer, stopped_early) {
            (Some(_), _) => FooterState::Read,
            // The header's state is the writer's word: it marks the log
            // closed only after the footer is committed.
            (None, _) if !reader.is_closed() => FooterState::Absent,
            (None, true) => FooterState::NotReached,
            (None, false) if !skipped.is_empty() => FooterState::Lost,
            (None, false) => FooterState::Absent,
        };
        let footer_matches = footer.as_ref().filter(|_| skipped.is_empty()).map(|f| {
            f.records == total
                && f.captured_bytes == total_captured
                && f.original_bytes == total_original
                && f.first_ns == total_first.unwrap_or(0)
                && f.last_ns == total_last.unwrap_or(0)
                && f.losses == losses
        });
        if let Some(f) = &footer {
            losses = f.losses;
        }
        let mut ifindexes: Vec<u32> = names.keys().chain(per_if.keys()).copied().collect();
        ifindexes.sort_unstable();
        ifindexes.dedup();
        let interfaces = ifindexes
            .into_iter()
            .map(|ifindex| InterfaceSummary {
                ifindex,
                name: names
                    .get(&ifindex)
                    .cloned()
                    .unwrap_or_else(|| format!("if{ifindex}")),
                records: per_if.get(&ifindex).copied().unwrap_or(0),
            })
            .collect();
        let mut loss_map: BTreeMap<String, u64> = losses
            .named()
            .iter()
            .map(|(n, v)| (n.to_string(), *v))
            .collect();
        // Records lost to damage count as lost records too: a reader of the
        // summary wants every record that is not in it.
        match (lost_to_damage, skipped.is_empty()) {
            (Some(n), _) => {
                loss_map.insert("lost_to_damage".into(), n);
            }
            // Unknown without the footer: no number rather than a wrong one.
            (None, false) => {}
            (None, true) => {
                loss_map.insert("lost_to_damage".into(), 0);
            }
        }
        loss_map.insert(
            "records_lost".into(),
            losses.records().saturating_add(lost_to_damage.unwrap_or(0)),
        );
        LogSummary {
            header: header_summary(header, reader.version()),
            filter: (!all).then(|| FilterSummary {
                expression: selection.filter.as_ref().map(|f| f.expression.clone()),
                matched: records,
                examined: total,
            }),
            records,
            first_ns: first,
            last_ns: last,
            captured_bytes: captured,
            original_bytes: original,
            interfaces,
            hooks,
            families,
            protocols,
            losses: loss_map,
            integrity: Integrity {
                closed: match footer_state {
                    FooterState::Read => Some(true),
                    FooterState::Absent => Some(false),
                    FooterState::NotReached | FooterState::Lost => None,
                },
                footer: footer_state,
                uncommitted_bytes: reader.uncommitted_len(),
                error,
                skipped,
                lost_to_damage,
                footer_matches,
                torn,
            },
            stop: footer
                .and_then(|f| f.stop)
                .map(|stop| StopSummary::of(&stop)),
            losses_raw: losses,
            before_stop_reasons: reader.version() < (1, 2),
        }
    }
}

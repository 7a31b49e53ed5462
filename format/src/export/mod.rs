//! Export of a log to pcapng and classic pcap.
//!
//! Both exporters stream: they walk the log once ([`LogReader::chunks`],
//! the frame-at-a-time form of [`LogReader::events`]) and encode
//! each packet as it comes into a buffer of their own, which they hand to
//! the output in writes of a few hundred KiB, so memory does not grow with
//! the log (only with the number of interfaces). They write into any
//! [`Write`]; a `BufWriter` around a file gains nothing.
//!
//! Records carry the packet from the network header on. Both formats put a
//! `LINKTYPE_LINUX_SLL2` (276) header of 20 bytes in front of it by default
//! (protocol, ifindex, direction): Debian 12's libpcap 1.10.3, and so its
//! tcpdump, cannot read a pcapng whose several interfaces are
//! `LINKTYPE_RAW` (101). [`LinkType::Raw`] writes the packet alone, 20
//! bytes less per packet, for readers that manage (tshark, or tcpdump with
//! a single interface). See [`link`] and [`ExportOptions`].
//!
//! A damaged log does not fail the export: everything valid before the
//! damage is written, the output is closed properly (pcapng statistics
//! included), and the [`ReadError`] is handed back in
//! [`ExportReport::damage`] so the caller can report it and fail. On
//! request ([`OnDamage::Skip`], the `_with` functions) the export goes on
//! past damaged frames from the next intact one, and lists what it skipped
//! in [`ExportReport::skipped`].
//!
//! Timestamps: the pinned `pcap-file` 3.0.0-rc.3 takes packet times as a
//! `Duration` and encodes them with the `if_tsresol` of the packet's
//! interface, defaulting to microseconds when the IDB has no such option
//! (nanoseconds would then be silently truncated). The pcapng exporter
//! therefore always writes `if_tsresol` = 9, which makes the stored value
//! the exact nanosecond count.

pub mod link;
mod output;
mod pcap;
mod pcapng;

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use crate::filter::{Selection, Selector};
use crate::log::{
    Footer, Interface, LogEvent, LogHeader, LogReader, Losses, OnDamage, ReadError, ReadErrorKind,
    Skipped,
};
use crate::record::PacketRecord;

pub use link::{LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, LinkType, SLL2_HEADER_LEN, sll2_header};
pub use pcapng::{EPB_FLAGS_INBOUND, EPB_FLAGS_OUTBOUND, epb_flags};

/// Output file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// pcapng: interfaces, direction, statistics and nanosecond times.
    Pcapng,
    /// Classic pcap with nanosecond timestamps (magic `0xA1B23C4D`); keeps
    /// no interface names and no statistics, and keeps ifindex and
    /// direction only in the SLL2 header ([`LinkType::Sll2`]).
    Pcap,
}

impl Format {
    /// The format a file name's extension names (`.pcapng`, `.pcap`, any
    /// case), or `None`.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?;
        ext.parse().ok()
    }

    /// `pcapng` or `pcap`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Pcapng => "pcapng",
            Format::Pcap => "pcap",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        if s.eq_ignore_ascii_case("pcapng") {
            Ok(Format::Pcapng)
        } else if s.eq_ignore_ascii_case("pcap") {
            Ok(Format::Pcap)
        } else {
            Err(format!("unknown format `{s}` (expected pcapng or pcap)"))
        }
    }
}

/// How to export, beyond the format: what to do at damage, and the link
/// type. `OnDamage` alone converts into it (the default link type), so
/// `export_with(reader, format, out, OnDamage::Skip)` reads as before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Stop at the first damaged frame, or skip to the next intact one.
    pub on_damage: OnDamage,
    /// Link-layer header type of the packets.
    pub link_type: LinkType,
}

impl From<OnDamage> for ExportOptions {
    fn from(on_damage: OnDamage) -> ExportOptions {
        ExportOptions {
            on_damage,
            ..ExportOptions::default()
        }
    }
}

impl From<LinkType> for ExportOptions {
    fn from(link_type: LinkType) -> ExportOptions {
        ExportOptions {
            link_type,
            ..ExportOptions::default()
        }
    }
}

/// How an export ended (when the output could be written).
#[derive(Debug)]
pub struct ExportReport {
    /// Packets written.
    pub packets: u64,
    /// Records looked at: all of them, or with a [`Selection`] those read
    /// before the walk ended (`-c`), of which `packets` were kept.
    pub examined: u64,
    /// Interface description blocks written (pcapng; 0 for pcap).
    pub interfaces: u32,
    /// Losses of the run as far as the valid part of the log tells (the
    /// footer's totals when the log was closed cleanly).
    pub losses: Losses,
    /// Whether the log ended with its footer (closed cleanly).
    pub closed: bool,
    /// The damage that stopped the export early, if any: everything before
    /// it was written.
    pub damage: Option<ReadError>,
    /// Damaged stretches passed over ([`OnDamage::Skip`]), in file order.
    pub skipped: Vec<Skipped>,
    /// Records lost in the skipped stretches, when the footer survived to
    /// tell (its record count less the packets written); `None` without a
    /// footer, or when nothing was skipped.
    pub lost_to_damage: Option<u64>,
}

impl ExportReport {
    /// Whether the whole log was exported (no damage found, none skipped).
    pub fn is_complete(&self) -> bool {
        self.damage.is_none() && self.skipped.is_empty()
    }

    /// Bytes of the log passed over as damaged.
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped.iter().map(|s| s.len).sum()
    }
}

/// Why an export could not write its output.
#[derive(Debug)]
pub enum ExportError {
    /// Writing to the output failed.
    Io(std::io::Error),
    /// A packet cannot be represented in the output format.
    Encode {
        /// Index (from 0) of the packet in the log.
        packet: u64,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::Io(e) => write!(f, "writing the output: {e}"),
            ExportError::Encode { packet, reason } => {
                write!(f, "packet {packet} cannot be exported: {reason}")
            }
        }
    }
}

impl std::error::Error for ExportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExportError::Io(e) => Some(e),
            ExportError::Encode { .. } => None,
        }
    }
}

impl From<std::io::Error> for ExportError {
    fn from(e: std::io::Error) -> ExportError {
        ExportError::Io(e)
    }
}

/// Exports the log `reader` holds to `out` in `format`, then flushes `out`
/// (default [`ExportOptions`]: stop at damage, SLL2).
pub fn export<W: Write>(
    reader: &LogReader,
    format: Format,
    out: W,
) -> Result<ExportReport, ExportError> {
    export_with(reader, format, out, ExportOptions::default())
}

/// [`export`] with options: what happens at a damaged frame (stop there, or
/// skip to the next intact frame, [`ExportReport::skipped`]) and the link
/// type. `options` is an [`ExportOptions`], or an [`OnDamage`] or
/// [`LinkType`] alone.
pub fn export_with<W: Write>(
    reader: &LogReader,
    format: Format,
    out: W,
    options: impl Into<ExportOptions>,
) -> Result<ExportReport, ExportError> {
    export_to(reader, format, out, options.into(), &Selection::default())
}

/// The export into any [`output::Output`]: a writer, or the hand-off to a
/// writer thread.
fn export_to<O: output::Output>(
    reader: &LogReader,
    format: Format,
    out: O,
    options: ExportOptions,
    selection: &Selection,
) -> Result<ExportReport, ExportError> {
    let header = reader.header();
    let (link, on_damage) = (options.link_type, options.on_damage);
    match format {
        Format::Pcapng => run(
            reader,
            pcapng::PcapngSink::new(out, header, link)?,
            on_damage,
            selection,
        ),
        Format::Pcap => run(
            reader,
            pcap::PcapSink::new(out, header, link)?,
            on_damage,
            selection,
        ),
    }
}

/// Like [`export`], but `out` is written by a second thread while this one
/// reads the log and encodes, in the same pieces, so that the `write(2)`
/// calls (for a file: the kernel's copy into the page cache and the file
/// system's work, about as long as the rest) overlap with decoding. The
/// output is the same byte for byte; so are the errors (a write error
/// stops the export and is returned).
pub fn export_threaded<W: Write + Send>(
    reader: &LogReader,
    format: Format,
    out: W,
) -> Result<ExportReport, ExportError> {
    export_threaded_with(reader, format, out, ExportOptions::default())
}

/// [`export_threaded`] with options (see [`export_with`]).
pub fn export_threaded_with<W: Write + Send>(
    reader: &LogReader,
    format: Format,
    out: W,
    options: impl Into<ExportOptions>,
) -> Result<ExportReport, ExportError> {
    export_threaded_selected(reader, format, out, options, &Selection::default())
}

/// [`export_threaded_with`], writing only the records `selection` keeps
/// ([`ExportReport::examined`] says how many it looked at).
pub fn export_threaded_selected<W: Write + Send>(
    reader: &LogReader,
    format: Format,
    out: W,
    options: impl Into<ExportOptions>,
    selection: &Selection,
) -> Result<ExportReport, ExportError> {
    let options = options.into();
    output::with_writer_thread(out, |handoff| {
        export_to(reader, format, handoff, options, selection)
    })
}

/// Exports to pcapng; see [`export`].
///
/// One SHB (`shb_userappl` `imp2 <version>`, `shb_os` `Linux <kernel
/// release>`, a comment naming source, host and start); one IDB per
/// interface (`LINKTYPE_LINUX_SLL2`, the log's snaplen + 20, `if_name`,
/// `if_description` "ifindex N", `if_tsresol` = 9), those of the header
/// first, later ones when an interface frame or a packet first needs them
/// (an ifindex the log never named becomes `if<N>`; a new name for a known
/// ifindex gets a new IDB); one EPB per packet with `epb_flags` direction
/// (pre-routing inbound, local-out outbound, other hooks 0); at the end one
/// ISB per IDB with `isb_starttime`/`isb_endtime` (its first and last
/// packet, else the capture's span), `isb_usrdeliv` (its packets),
/// `isb_osdrop` and `isb_ifrecv` (= usrdeliv + osdrop), all 64-bit.
///
/// Losses: imp2 counts lost records per run, not per interface. When the
/// run has something to report (losses, damage, a log not closed cleanly, a
/// recording cut short by a write or receive error),
/// a last IDB named `any`, without packets, carries it: the run's total
/// (`Losses::records()`) in its ISB's `isb_osdrop`, and comments listing the
/// losses by cause and describing the damage. The real interfaces' ISBs say
/// 0, so the sum over the ISBs is right and none of them is charged.
pub fn export_pcapng<W: Write>(reader: &LogReader, out: W) -> Result<ExportReport, ExportError> {
    export(reader, Format::Pcapng, out)
}

/// Exports to classic pcap; see [`export`].
pub fn export_pcap<W: Write>(reader: &LogReader, out: W) -> Result<ExportReport, ExportError> {
    export(reader, Format::Pcap, out)
}

/// What the walk over the log tells the end of an export.
#[derive(Debug)]
pub(crate) struct Ending<'a> {
    pub header: &'a LogHeader,
    pub losses: Losses,
    pub footer: Option<&'a Footer>,
    pub damage: Option<&'a ReadError>,
    pub skipped: &'a [Skipped],
    pub lost_to_damage: Option<u64>,
}

/// One output format.
pub(crate) trait ExportSink<'r> {
    /// Writes one packet; `index` counts packets from 0.
    fn record(&mut self, index: u64, record: &PacketRecord<'r>) -> Result<(), ExportError>;
    /// Learns an interface seen after the header.
    fn interface(&mut self, interface: &Interface) -> Result<(), ExportError>;
    /// Writes whatever closes the output and flushes it; returns the number
    /// of interfaces described.
    fn finish(self, ending: &Ending<'_>) -> Result<u32, ExportError>;
}

fn run<'r, S: ExportSink<'r>>(
    reader: &'r LogReader,
    mut sink: S,
    on_damage: OnDamage,
    selection: &Selection,
) -> Result<ExportReport, ExportError> {
    let all = selection.keeps_all();
    let mut selector = Selector::new(selection, &reader.header().interfaces);
    let mut examined = 0u64;
    let mut packets = 0u64;
    let mut losses = Losses::default();
    let mut footer = None;
    let mut damage = None;
    let mut skipped = Vec::new();
    // Frame by frame: a RECORDS frame's records come as one slice (the
    // same verified walk as `events`, without an event per record).
    let mut chunks = reader.chunks_with(on_damage);
    while let Some(chunk) = chunks.next() {
        match chunk {
            Ok((records, event)) => {
                if all {
                    for record in records {
                        sink.record(packets, record)?;
                        packets += 1;
                    }
                    examined += records.len() as u64;
                } else {
                    for record in records {
                        if selector.keep(record) {
                            sink.record(packets, record)?;
                            packets += 1;
                        }
                    }
                    examined = selector.examined;
                }
                match event {
                    Some(LogEvent::Interface(interface)) => {
                        selector.interface(&interface);
                        sink.interface(&interface)?
                    }
                    Some(LogEvent::Losses(delta)) => losses.add(&delta),
                    Some(LogEvent::Footer(f)) => footer = Some(f),
                    Some(LogEvent::Skipped(s)) => skipped.push(s),
                    Some(LogEvent::Record(_)) | None => {}
                }
            }
            Err(e) => {
                damage = Some(e);
                break;
            }
        }
        if selector.done() {
            break;
        }
    }
    // The footer holds the run's totals; the deltas should sum to the
    // same, but the footer is what the recorder vouched for at the end.
    if let Some(f) = &footer {
        losses = f.losses;
    }
    let lost_to_damage = match &footer {
        Some(f) if !skipped.is_empty() => Some(f.records.saturating_sub(examined)),
        _ => None,
    };
    let interfaces = sink.finish(&Ending {
        header: reader.header(),
        losses,
        footer: footer.as_ref(),
        damage: damage.as_ref(),
        skipped: &skipped,
        lost_to_damage,
    })?;
    Ok(ExportReport {
        packets,
        examined,
        interfaces,
        losses,
        closed: footer.is_some(),
        damage,
        skipped,
        lost_to_damage,
    })
}

/// `n` damaged stretches as words: `1 place`, `3 places`.
pub fn places(n: usize) -> String {
    if n == 1 {
        "1 place".into()
    } else {
        format!("{n} places")
    }
}

/// One line naming every non-zero loss counter, e.g.
/// `12 records lost (kernel_rcvbuf 10, gap_records 2; gap_batches 1)`:
/// record counts first, then event counts after the `;`.
pub fn losses_summary(losses: &Losses) -> String {
    losses_summary_with_damage(losses, 0)
}

/// [`losses_summary`] with `lost_to_damage` records a reader lost in
/// damaged frames it skipped counted too, as `lost_to_damage N` among the
/// record counts (and in the total), e.g. `18 records lost (gap_records 2,
/// lost_to_damage 16)`.
pub fn losses_summary_with_damage(losses: &Losses, lost_to_damage: u64) -> String {
    let mut named = losses.named().to_vec();
    named.push(("lost_to_damage", lost_to_damage));
    let (records, events): (Vec<_>, Vec<_>) =
        named
            .iter()
            .filter(|(_, v)| *v != 0)
            .partition(|(name, _)| {
                name.starts_with("kernel_")
                    || matches!(*name, "gap_records" | "unwritten" | "lost_to_damage")
            });
    let join = |v: &[&(&str, u64)]| {
        v.iter()
            .map(|(n, c)| format!("{n} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let total = losses.records().saturating_add(lost_to_damage);
    let mut s = format!("{total} records lost");
    match (records.is_empty(), events.is_empty()) {
        (true, true) => {}
        (false, true) => s += &format!(" ({})", join(&records)),
        (true, false) => s += &format!(" ({})", join(&events)),
        (false, false) => s += &format!(" ({}; {})", join(&records), join(&events)),
    }
    s
}

/// A one-line human reason for a read error, without its offset (callers
/// add `at byte N`), e.g. `damaged frame: checksum mismatch (stored
/// 0x1234abcd, computed 0x00000000)`.
pub fn read_error_reason(kind: &ReadErrorKind) -> String {
    match kind {
        ReadErrorKind::Io(e) => io_reason(e),
        ReadErrorKind::BadChecksum { .. } | ReadErrorKind::BadFrame(_) => {
            format!("damaged frame: {kind}")
        }
        ReadErrorKind::TornTail {
            committed,
            file_len,
        } => format!("torn tail (file cut to {file_len} bytes of {committed} committed)"),
        ReadErrorKind::NotALog
        | ReadErrorKind::UnsupportedVersion { .. }
        | ReadErrorKind::BadHeader(_) => kind.to_string(),
    }
}

/// An I/O error's message without Rust's ` (os error N)` suffix, e.g.
/// `No such file or directory`.
pub fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match e.raw_os_error() {
        Some(code) => s
            .strip_suffix(&format!(" (os error {code})"))
            .map_or_else(|| s.clone(), str::to_string),
        None => s,
    }
}

/// `ns` (nanoseconds since the Unix epoch) as UTC ISO 8601 with all nine
/// fractional digits, e.g. `2024-05-01T12:34:56.000000123Z`.
pub fn format_time_ns(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod link_tests;
#[cfg(test)]
mod tests;

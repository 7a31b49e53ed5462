//! pcapng output: `pcap-file`'s block encoders for the SHB, IDBs and ISBs,
//! a hand-written one for the EPBs ([`put_epb`]).
//!
//! Layout of an exported file:
//!
//! - one SHB: `shb_userappl` `imp2 <version>`, `shb_os` `Linux <release>`
//!   (from the log header), and a comment naming the source, host and start
//!   of the recording;
//! - one IDB per interface of the log header, in order, then one more IDB
//!   each time a packet or an interface frame needs one: an interface frame
//!   for a new ifindex (or a new name for a known one) adds an IDB with that
//!   name; a packet on an ifindex never named adds an IDB named `if<N>`.
//!   Every IDB has the export's link type (`LINKTYPE_LINUX_SLL2` by
//!   default, `LINKTYPE_RAW` on request; [`super::link`]), the log's
//!   snaplen plus the link-layer header's length, `if_name`,
//!   `if_description` "ifindex N" and `if_tsresol` = 9 (nanoseconds);
//! - one EPB per packet: nanosecond timestamp, captured and original length
//!   (with SLL2 both 20 more than the log's: the SLL2 header, with the
//!   protocol, ifindex and direction, comes before the IP packet),
//!   `epb_flags` with the direction (pre-routing = inbound, local-out =
//!   outbound, unknown hook = 0, "not available");
//! - at the end one ISB per IDB with `isb_starttime`/`isb_endtime` (first and
//!   last packet on that IDB, or the capture's span when it has none),
//!   `isb_usrdeliv` (packets written for it), `isb_osdrop` and `isb_ifrecv`
//!   (= usrdeliv + osdrop).
//!
//! Losses: imp2 counts lost records per run, not per interface. When a run
//! has something to report (losses, damage, a log not closed cleanly, a
//! recording cut short by a write or receive error), one
//! more IDB named `any`, written last and without packets, carries it: its
//! ISB has the run's `Losses::records()` in `isb_osdrop` and comments that
//! list the losses by cause and describe the damage; every real interface's
//! ISB says 0. Summed over the ISBs the counters are right, and no real
//! interface is blamed for drops it did not have. All counters are 64-bit.
//!
//! Strings from the log longer than an option can hold (64 KiB - 1) are cut
//! and end in `...` ([`fit_option`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use pcap_file::Endianness;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption, InterfaceTsResolution,
};
use pcap_file::pcapng::blocks::interface_statistics::{
    InterfaceStatisticsBlock, InterfaceStatisticsOption,
};
use pcap_file::pcapng::blocks::opt_common::CommonOption;
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::{PcapNgWriteError, PcapNgWriter};

use super::link::{LinkType, SLL2_HEADER_LEN};
use super::output::{BUF_CAPACITY, FLUSH_AT, Output};
use super::{Ending, ExportError, ExportSink, losses_summary, places, read_error_reason};
use crate::log::{Interface, LogHeader, StopCause};
use crate::record::{Hook, PacketRecord};

/// `epb_flags` direction bits for an inbound packet.
pub const EPB_FLAGS_INBOUND: u32 = 1;
/// `epb_flags` direction bits for an outbound packet.
pub const EPB_FLAGS_OUTBOUND: u32 = 2;

/// The `epb_flags` word for a packet captured at `hook`: direction only
/// (bits 0-1), 0 when the hook does not tell.
pub fn epb_flags(hook: Hook) -> u32 {
    match hook.inbound() {
        Some(true) => EPB_FLAGS_INBOUND,
        Some(false) => EPB_FLAGS_OUTBOUND,
        None => 0,
    }
}

/// Per-IDB bookkeeping for the ISBs.
#[derive(Debug)]
struct IfStats {
    packets: u64,
    first_ns: u64,
    last_ns: u64,
}

/// Bytes of an EPB around its packet data, with the one option imp2 writes:
/// 28 (type, length, interface id, timestamp high and low, captured and
/// original length) + 8 (`epb_flags`) + 4 (`opt_endofopt`) + 4 (length
/// again).
const EPB_OVERHEAD: usize = 44;

pub(crate) struct PcapngSink<O> {
    out: O,
    /// `pcap-file`'s writer over the output buffer. It encodes the SHB, the
    /// IDBs and the ISBs (rare blocks with options) and keeps the section's
    /// interface state for them; the EPBs, one per packet, are appended to
    /// its buffer by [`put_epb`] instead (see there why).
    writer: PcapNgWriter<Vec<u8>>,
    link: LinkType,
    /// Of every IDB: the log's, plus the link-layer header.
    snaplen: u32,
    /// One entry per IDB written, by interface id.
    stats: Vec<IfStats>,
    /// Current IDB of each ifindex and the name it was described with.
    by_ifindex: HashMap<u32, (u32, String)>,
    /// (ifindex, IDB) of the previous packet: packets come in runs on one
    /// interface, and this spares the hash lookup for most of them.
    last_if: Option<(u32, u32)>,
}

impl<O> std::fmt::Debug for PcapngSink<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapngSink")
            .field("interfaces", &self.stats.len())
            .finish_non_exhaustive()
    }
}

fn write_err(what: &str, e: PcapNgWriteError) -> ExportError {
    match e {
        PcapNgWriteError::Io(io) => ExportError::Io(io),
        other => ExportError::Io(std::io::Error::other(format!(
            "{what}: {}",
            error_chain(&other)
        ))),
    }
}

/// `e` and its sources, joined by `: ` (pcap-file's errors put the detail
/// in the source).
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s += ": ";
        s += &inner.to_string();
        cur = inner.source();
    }
    s
}

/// Appends one Enhanced Packet Block, little-endian, to `buf`, whose
/// packet is `link` (the link-layer header, empty for `LINKTYPE_RAW`)
/// followed by `data`, `orig_len` bytes of IP packet in the original: the
/// same bytes `pcap-file`'s encoder writes for an EPB of `link` + `data`
/// whose only option is `epb_flags` on an interface with `if_tsresol` = 9
/// (the tests compare the two).
///
/// Hand-encoded because this is the exporter's inner loop and `pcap-file`
/// is slow at it: per block it validates the interface through its state,
/// turns the `Duration` into if_tsresol units with a 128-bit division,
/// walks an option list, and issues seven small writes; that made up more
/// than half of the time of a conversion. Here the timestamp is the
/// nanosecond count itself (every IDB says if_tsresol = 9) and the block
/// is three copies into a buffer.
///
/// `None`, with nothing written, when the block would be longer than a
/// pcapng block length can say (4 GiB), which a log record cannot reach.
/// An original length that the header would take past 4 GiB saturates.
#[inline]
pub(super) fn put_epb(
    buf: &mut Vec<u8>,
    interface_id: u32,
    ts_ns: u64,
    orig_len: u32,
    link: &[u8],
    data: &[u8],
    flags: u32,
) -> Option<()> {
    let packet_len = link.len() + data.len();
    let cap = u32::try_from(packet_len).ok()?;
    let orig_len = orig_len.saturating_add(link.len() as u32);
    let pad = packet_len.wrapping_neg() & 3;
    let total = u32::try_from(EPB_OVERHEAD + packet_len + pad).ok()?;
    let mut head = [0u8; 28];
    head[0..4].copy_from_slice(&6u32.to_le_bytes()); // block type: EPB
    head[4..8].copy_from_slice(&total.to_le_bytes());
    head[8..12].copy_from_slice(&interface_id.to_le_bytes());
    head[12..16].copy_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
    head[16..20].copy_from_slice(&(ts_ns as u32).to_le_bytes());
    head[20..24].copy_from_slice(&cap.to_le_bytes());
    head[24..28].copy_from_slice(&orig_len.to_le_bytes());
    let mut tail = [0u8; 3 + 16];
    // `pad` zero bytes, then epb_flags (code 2, length 4), opt_endofopt,
    // and the block length again.
    let t = &mut tail[pad..pad + 16];
    t[0..2].copy_from_slice(&2u16.to_le_bytes());
    t[2..4].copy_from_slice(&4u16.to_le_bytes());
    t[4..8].copy_from_slice(&flags.to_le_bytes());
    t[12..16].copy_from_slice(&total.to_le_bytes());
    buf.reserve(total as usize);
    buf.extend_from_slice(&head);
    buf.extend_from_slice(link);
    buf.extend_from_slice(data);
    buf.extend_from_slice(&tail[..pad + 16]);
    Some(())
}

impl<O: Output> PcapngSink<O> {
    pub(crate) fn new(out: O, header: &LogHeader, link: LinkType) -> Result<Self, ExportError> {
        let mut options = vec![SectionHeaderOption::UserApplication(Cow::Owned(format!(
            "imp2 {}",
            env!("CARGO_PKG_VERSION")
        )))];
        if !header.kernel_release.is_empty() {
            options.push(SectionHeaderOption::OS(fit_option(format!(
                "Linux {}",
                header.kernel_release
            ))));
        }
        options.push(SectionHeaderOption::Common(CommonOption::Comment(
            fit_option(shb_comment(header)),
        )));
        let section = SectionHeaderBlock {
            // Fixed, so that the output does not depend on the machine, and
            // what `put_epb` writes.
            endianness: Endianness::Little,
            major_version: 1,
            minor_version: 0,
            section_length: -1,
            options,
        };
        let buf = Vec::with_capacity(BUF_CAPACITY);
        let writer = PcapNgWriter::with_section_header(buf, section)
            .map_err(|e| write_err("section header", e))?;
        let mut sink = PcapngSink {
            out,
            writer,
            link,
            snaplen: link.snaplen(header.snaplen),
            stats: Vec::new(),
            by_ifindex: HashMap::new(),
            last_if: None,
        };
        for interface in &header.interfaces {
            sink.interface(interface)?;
        }
        Ok(sink)
    }

    /// Writes an IDB and returns its interface id.
    fn add_idb(&mut self, name: &str, description: &str) -> Result<u32, ExportError> {
        let id = u32::try_from(self.stats.len())
            .map_err(|_| std::io::Error::other("more than 2^32 interfaces"))?;
        let idb = InterfaceDescriptionBlock {
            linktype: self.link.data_link(),
            snaplen: self.snaplen,
            options: vec![
                InterfaceDescriptionOption::IfName(fit_option(name)),
                InterfaceDescriptionOption::IfDescription(fit_option(description)),
                // Always: pcap-file (and readers) default to microseconds,
                // and `put_epb` writes nanoseconds.
                InterfaceDescriptionOption::IfTsResol(InterfaceTsResolution::NANO),
            ],
        };
        self.writer
            .write_pcapng_block(idb)
            .map_err(|e| write_err("interface description", e))?;
        self.stats.push(IfStats {
            packets: 0,
            first_ns: u64::MAX,
            last_ns: 0,
        });
        Ok(id)
    }

    fn idb_for(&mut self, ifindex: u32) -> Result<u32, ExportError> {
        if let Some((id, _)) = self.by_ifindex.get(&ifindex) {
            return Ok(*id);
        }
        let name = format!("if{ifindex}");
        let id = self.add_idb(&name, &format!("ifindex {ifindex}, name not recorded"))?;
        self.by_ifindex.insert(ifindex, (id, name));
        Ok(id)
    }

    /// Hands the buffered bytes to the output.
    fn drain(&mut self) -> Result<(), ExportError> {
        self.out.submit(self.writer.get_mut())?;
        Ok(())
    }

    /// Writes everything buffered so far to the output (tests).
    #[cfg(test)]
    pub(crate) fn flush_buffer(&mut self) -> Result<(), ExportError> {
        self.drain()
    }
}

impl<'r, O: Output> ExportSink<'r> for PcapngSink<O> {
    #[inline]
    fn record(&mut self, index: u64, record: &PacketRecord<'r>) -> Result<(), ExportError> {
        let id = match self.last_if {
            Some((ifindex, id)) if ifindex == record.ifindex => id,
            _ => {
                let id = self.idb_for(record.ifindex)?;
                self.last_if = Some((record.ifindex, id));
                id
            }
        };
        let ns = record.tstamp_ns;
        let s = &mut self.stats[id as usize];
        s.packets += 1;
        s.first_ns = s.first_ns.min(ns);
        s.last_ns = s.last_ns.max(ns);
        let flags = epb_flags(record.hook);
        let mut scratch = [0u8; SLL2_HEADER_LEN];
        let link = self.link.header(record, &mut scratch);
        let buf = self.writer.get_mut();
        if record.data.len() > record.orig_len as usize
            || put_epb(buf, id, ns, record.orig_len, link, record.data, flags).is_none()
        {
            // Nothing the log reader hands out (it checks captured <=
            // original length; a record is far below 4 GiB): leave it to
            // pcap-file, which refuses it with its reason.
            let epb = EnhancedPacketBlock {
                interface_id: id,
                timestamp: Duration::from_nanos(ns),
                original_len: record.orig_len.saturating_add(link.len() as u32),
                data: Cow::Owned([link, record.data].concat()),
                options: vec![EnhancedPacketOption::Flags(flags)],
            };
            self.writer.write_pcapng_block(epb).map_err(|e| match e {
                PcapNgWriteError::Io(io) => ExportError::Io(io),
                other => ExportError::Encode {
                    packet: index,
                    reason: error_chain(&other),
                },
            })?;
        }
        if self.writer.get_ref().len() >= FLUSH_AT {
            self.drain()?;
        }
        Ok(())
    }

    fn interface(&mut self, interface: &Interface) -> Result<(), ExportError> {
        if let Some((_, name)) = self.by_ifindex.get(&interface.ifindex)
            && *name == interface.name
        {
            return Ok(());
        }
        let id = self.add_idb(&interface.name, &format!("ifindex {}", interface.ifindex))?;
        self.by_ifindex
            .insert(interface.ifindex, (id, interface.name.clone()));
        // Packets of this ifindex go to the new IDB from now on.
        self.last_if = None;
        Ok(())
    }

    fn finish(mut self, ending: &Ending<'_>) -> Result<u32, ExportError> {
        let lost = ending.losses.records();
        let mut notes = Vec::new();
        if !ending.losses.is_zero() {
            notes.push(format!(
                "imp2 losses over the run (not per interface, so counted in this \
                 interface's isb_osdrop): {}",
                losses_summary(&ending.losses)
            ));
        }
        if let Some(first) = ending.skipped.first() {
            let bytes: u64 = ending.skipped.iter().map(|s| s.len).sum();
            let missing = match ending.lost_to_damage {
                Some(n) => format!("{n} packets in them are missing (by the log's footer)"),
                None => "the packets in them are missing (how many is unknown: the log's \
                         footer did not survive)"
                    .to_string(),
            };
            notes.push(format!(
                "log damaged: {bytes} bytes in {} skipped, the first at byte {} ({}); \
                 {missing}",
                places(ending.skipped.len()),
                first.offset,
                first.reason
            ));
        }
        // A run cut short says why; a requested stop (signal, -c,
        // --duration) needs no note.
        if let Some(stop) = ending.footer.and_then(|f| f.stop.as_ref()) {
            if matches!(
                stop.cause,
                StopCause::WriteError | StopCause::ReceiveError | StopCause::Other(_)
            ) {
                notes.push(format!("recording ended early: {stop}"));
            }
        }
        if let Some(e) = ending.damage {
            notes.push(format!(
                "log damaged at byte {}: {}; packets after it are missing",
                e.offset,
                read_error_reason(&e.kind)
            ));
        } else if ending.footer.is_none() && ending.skipped.is_empty() {
            notes.push("log not closed cleanly: the recording was still running or its recorder died; packets after the last committed frame are missing".to_string());
        }
        // The run-wide facts go on an interface of their own, so that no
        // real interface is charged with drops it did not have.
        let run_idb = if notes.is_empty() {
            None
        } else {
            Some(
                self.add_idb("any", "no packets; carries the statistics of the imp2 run")? as usize,
            )
        };

        let created = ending.header.created_ns;
        // The capture's first and last packet, over all interfaces.
        let with_packets = || self.stats.iter().filter(|s| s.packets > 0);
        let first_ns = with_packets().map(|s| s.first_ns).min();
        let last_ns = with_packets().map(|s| s.last_ns).max();
        let span_first = first_ns.unwrap_or(created);
        let span_last = ending
            .footer
            .map(|f| f.closed_ns)
            .or(last_ns)
            .unwrap_or(created)
            .max(span_first);
        let stamp = span_last;
        let stats = std::mem::take(&mut self.stats);
        for (id, s) in stats.iter().enumerate() {
            let (start, end) = if s.packets > 0 {
                (s.first_ns, s.last_ns)
            } else {
                (span_first.min(created), span_last)
            };
            let osdrop = if Some(id) == run_idb { lost } else { 0 };
            let mut options = vec![
                InterfaceStatisticsOption::IsbStartTime(Duration::from_nanos(start)),
                InterfaceStatisticsOption::IsbEndTime(Duration::from_nanos(end)),
                InterfaceStatisticsOption::IsbIfRecv(s.packets.saturating_add(osdrop)),
                InterfaceStatisticsOption::IsbOsDrop(osdrop),
                InterfaceStatisticsOption::IsbUsrDeliv(s.packets),
            ];
            if Some(id) == run_idb {
                for note in &notes {
                    options.push(InterfaceStatisticsOption::Common(CommonOption::Comment(
                        Cow::Borrowed(note),
                    )));
                }
            }
            let isb = InterfaceStatisticsBlock {
                interface_id: id as u32,
                timestamp: Duration::from_nanos(stamp),
                options,
            };
            self.writer
                .write_pcapng_block(isb)
                .map_err(|e| write_err("interface statistics", e))?;
        }
        self.drain()?;
        self.out.finish()?;
        Ok(stats.len() as u32)
    }
}

/// Longest value a pcapng option can carry: its length field is a u16.
pub(super) const MAX_OPTION_LEN: usize = u16::MAX as usize;
/// What ends a string cut to fit an option.
const CUT_MARK: &str = "...";

/// `s`, cut at a character boundary with [`CUT_MARK`] if it is longer than
/// an option can carry. The strings come from the log (host name, source,
/// interface names): the recorder writes short ones, but a damaged or
/// hand-made log may hold any length, and one long name must not make the
/// whole export fail.
fn fit_option<'a>(s: impl Into<Cow<'a, str>>) -> Cow<'a, str> {
    let s = s.into();
    if s.len() <= MAX_OPTION_LEN {
        return s;
    }
    let mut end = MAX_OPTION_LEN - CUT_MARK.len();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{CUT_MARK}", &s[..end]))
}

fn shb_comment(header: &LogHeader) -> String {
    let mut parts = vec!["imp2 log".to_string()];
    if !header.source.is_empty() {
        parts.push(format!("source {}", header.source));
    }
    if !header.hostname.is_empty() {
        parts.push(format!("host {}", header.hostname));
    }
    parts.push(format!(
        "recording started {}",
        super::format_time_ns(header.created_ns)
    ));
    parts.push(format!(
        "timestamps precise to 10^-{} s",
        header.tsresol_digits
    ));
    parts.join(", ")
}

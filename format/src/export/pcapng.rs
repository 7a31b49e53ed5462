//! pcapng output, through `pcap-file`'s block encoders.
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
//!   Every IDB is `LINKTYPE_RAW`, has the log's snaplen, `if_name`,
//!   `if_description` "ifindex N" and `if_tsresol` = 9 (nanoseconds);
//! - one EPB per packet: nanosecond timestamp, captured and original length,
//!   `epb_flags` with the direction (pre-routing = inbound, local-out =
//!   outbound, unknown hook = 0, "not available");
//! - at the end one ISB per IDB with `isb_starttime`/`isb_endtime` (first and
//!   last packet on that IDB, or the capture's span when it has none),
//!   `isb_usrdeliv` (packets written for it), `isb_osdrop` and `isb_ifrecv`
//!   (= usrdeliv + osdrop).
//!
//! Losses: imp2 counts lost records per run, not per interface, so the whole
//! run's `Losses::records()` goes into `isb_osdrop` of the first ISB
//! (interface 0) and every other ISB says 0: summed over the ISBs the
//! counters are right, no interface is blamed wrongly beyond the first. The
//! first ISB's comment says so and lists the losses by cause, and notes a
//! log that was not closed cleanly or was damaged. A log with no interface
//! at all but something to report gets one IDB named `any` to carry them.
//! All counters are 64-bit.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption, InterfaceTsResolution,
};
use pcap_file::pcapng::blocks::interface_statistics::{
    InterfaceStatisticsBlock, InterfaceStatisticsOption,
};
use pcap_file::pcapng::blocks::opt_common::CommonOption;
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::{Block, PcapNgWriteError, PcapNgWriter};
use pcap_file::{DataLink, Endianness};

use super::{Ending, ExportError, Sink, losses_summary, read_error_reason};
use crate::log::{Interface, LogHeader};
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

pub(crate) struct PcapngSink<'r, W: Write> {
    writer: PcapNgWriter<W>,
    snaplen: u32,
    /// One entry per IDB written, by interface id.
    stats: Vec<IfStats>,
    /// Current IDB of each ifindex and the name it was described with.
    by_ifindex: HashMap<u32, (u32, String)>,
    /// Reused for every packet so that writing one allocates nothing.
    epb: Block<'r>,
    first_ns: Option<u64>,
    last_ns: Option<u64>,
}

impl<W: Write> std::fmt::Debug for PcapngSink<'_, W> {
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

impl<'r, W: Write> PcapngSink<'r, W> {
    pub(crate) fn new(out: W, header: &LogHeader) -> Result<Self, ExportError> {
        let mut options = vec![SectionHeaderOption::UserApplication(Cow::Owned(format!(
            "imp2 {}",
            env!("CARGO_PKG_VERSION")
        )))];
        if !header.kernel_release.is_empty() {
            options.push(SectionHeaderOption::OS(Cow::Owned(format!(
                "Linux {}",
                header.kernel_release
            ))));
        }
        options.push(SectionHeaderOption::Common(CommonOption::Comment(
            Cow::Owned(shb_comment(header)),
        )));
        let section = SectionHeaderBlock {
            // Fixed, so that the output does not depend on the machine.
            endianness: Endianness::Little,
            major_version: 1,
            minor_version: 0,
            section_length: -1,
            options,
        };
        let writer = PcapNgWriter::with_section_header(out, section)
            .map_err(|e| write_err("section header", e))?;
        let mut sink = PcapngSink {
            writer,
            snaplen: header.snaplen,
            stats: Vec::new(),
            by_ifindex: HashMap::new(),
            epb: Block::EnhancedPacket(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::ZERO,
                original_len: 0,
                data: Cow::Borrowed(&[]),
                options: vec![EnhancedPacketOption::Flags(0)],
            }),
            first_ns: None,
            last_ns: None,
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
            linktype: DataLink::RAW,
            snaplen: self.snaplen,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Borrowed(name)),
                InterfaceDescriptionOption::IfDescription(Cow::Borrowed(description)),
                // Always: pcap-file (and readers) default to microseconds.
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
}

impl<'r, W: Write> Sink<'r> for PcapngSink<'r, W> {
    fn record(&mut self, index: u64, record: &PacketRecord<'r>) -> Result<(), ExportError> {
        let id = self.idb_for(record.ifindex)?;
        let ns = record.tstamp_ns;
        let s = &mut self.stats[id as usize];
        s.packets += 1;
        s.first_ns = s.first_ns.min(ns);
        s.last_ns = s.last_ns.max(ns);
        self.first_ns = Some(self.first_ns.map_or(ns, |f| f.min(ns)));
        self.last_ns = Some(self.last_ns.map_or(ns, |l| l.max(ns)));
        let Block::EnhancedPacket(epb) = &mut self.epb else {
            unreachable!("epb holds an EnhancedPacket block");
        };
        epb.interface_id = id;
        epb.timestamp = Duration::from_nanos(ns);
        epb.original_len = record.orig_len;
        epb.data = Cow::Borrowed(record.data);
        epb.options[0] = EnhancedPacketOption::Flags(epb_flags(record.hook));
        self.writer.write_block(&self.epb).map_err(|e| match e {
            PcapNgWriteError::Io(io) => ExportError::Io(io),
            other => ExportError::Encode {
                packet: index,
                reason: error_chain(&other),
            },
        })?;
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
        Ok(())
    }

    fn finish(mut self, ending: &Ending<'_>) -> Result<u32, ExportError> {
        let lost = ending.losses.records();
        let mut notes = Vec::new();
        if !ending.losses.is_zero() {
            notes.push(format!(
                "imp2 losses over the run (not per interface, all counted in this \
                 interface's isb_osdrop): {}",
                losses_summary(&ending.losses)
            ));
        }
        if let Some(e) = ending.damage {
            notes.push(format!(
                "log damaged at byte {}: {}; packets after it are missing",
                e.offset,
                read_error_reason(&e.kind)
            ));
        } else if ending.footer.is_none() {
            notes.push("log not closed cleanly: the recording was still running or its recorder died; packets after the last committed frame are missing".to_string());
        }
        if self.stats.is_empty() && !notes.is_empty() {
            self.add_idb("any", "no packets; carries the statistics of the imp2 run")?;
        }

        let created = ending.header.created_ns;
        let span_first = self.first_ns.unwrap_or(created);
        let span_last = ending
            .footer
            .map(|f| f.closed_ns)
            .or(self.last_ns)
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
            let osdrop = if id == 0 { lost } else { 0 };
            let mut options = vec![
                InterfaceStatisticsOption::IsbStartTime(Duration::from_nanos(start)),
                InterfaceStatisticsOption::IsbEndTime(Duration::from_nanos(end)),
                InterfaceStatisticsOption::IsbIfRecv(s.packets.saturating_add(osdrop)),
                InterfaceStatisticsOption::IsbOsDrop(osdrop),
                InterfaceStatisticsOption::IsbUsrDeliv(s.packets),
            ];
            if id == 0 {
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
        self.writer.get_mut().flush()?;
        Ok(stats.len() as u32)
    }
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

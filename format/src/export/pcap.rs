//! Classic pcap output: `pcap-file` writes the global header, the packet
//! records are hand-encoded ([`put_record`]).
//!
//! Global header: nanosecond magic `0xA1B23C4D` (little-endian on disk:
//! `4D 3C B2 A1`), version 2.4, snaplen, link type. Each packet: `ts_sec`,
//! `ts_nsec`, `incl_len`, `orig_len`, data.
//!
//! The link type is `LINKTYPE_LINUX_SLL2` by default: each packet's data
//! starts with the 20-byte SLL2 header ([`super::link`]), which keeps the
//! ifindex and the direction, and the lengths and the snaplen count it
//! (the log's + 20). With `LINKTYPE_RAW` the data is the IP packet alone,
//! and ifindex and direction are dropped. Interface names and statistics
//! have no place in this format either way.

use std::borrow::Cow;
use std::time::Duration;

use pcap_file::Endianness;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapTsResolution, PcapWriteError, PcapWriter};

use super::link::{LinkType, SLL2_HEADER_LEN};
use super::output::{BUF_CAPACITY, FLUSH_AT, Output};
use super::pcapng::error_chain;
use super::{Ending, ExportError, ExportSink};
use crate::log::{Interface, LogHeader};
use crate::record::PacketRecord;

/// Snap length (of the IP packet) written when the log header has none (0
/// would make every packet "too long" for readers).
const SNAPLEN_FALLBACK: u32 = 65535;

pub(crate) struct PcapSink<O> {
    out: O,
    /// Output buffer, handed to `out` in pieces of about [`FLUSH_AT`].
    buf: Vec<u8>,
    link: LinkType,
    /// Of the file: the log's, plus the link-layer header.
    snaplen: u32,
}

impl<O> std::fmt::Debug for PcapSink<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapSink").finish_non_exhaustive()
    }
}

fn write_err(e: PcapWriteError) -> std::io::Error {
    match e {
        PcapWriteError::Io(io) | PcapWriteError::FieldWriteFailed(_, io) => io,
        other => std::io::Error::other(error_chain(&other)),
    }
}

/// Appends one packet record (nanosecond pcap, little-endian) to `buf`,
/// whose packet is `link` (the link-layer header, empty for
/// `LINKTYPE_RAW`) followed by `data`, `orig_len` bytes of IP packet in the
/// original; or returns `false`, with nothing written, when the packet
/// needs one of `pcap-file`'s refusals: a time past 2106 (`ts_sec` is 32
/// bits), more data than the snap length or than the original length. An
/// original length that the header would take past 4 GiB saturates.
///
/// Hand-encoded for the same reason as the pcapng EPBs: `pcap-file` makes a
/// `Duration` of the time, validates, converts and issues five small
/// writes per packet, a large part of the conversion's time for what is
/// 16 bytes of header and a copy.
#[inline]
pub(super) fn put_record(
    buf: &mut Vec<u8>,
    snaplen: u32,
    ts_ns: u64,
    orig_len: u32,
    link: &[u8],
    data: &[u8],
) -> bool {
    let secs = ts_ns / 1_000_000_000;
    let packet_len = link.len() + data.len();
    let (Ok(ts_sec), Ok(incl_len)) = (u32::try_from(secs), u32::try_from(packet_len)) else {
        return false;
    };
    let orig_len = orig_len.saturating_add(link.len() as u32);
    if incl_len > snaplen || incl_len > orig_len {
        return false;
    }
    let mut head = [0u8; 16];
    head[0..4].copy_from_slice(&ts_sec.to_le_bytes());
    head[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
    head[8..12].copy_from_slice(&incl_len.to_le_bytes());
    head[12..16].copy_from_slice(&orig_len.to_le_bytes());
    buf.reserve(16 + packet_len);
    buf.extend_from_slice(&head);
    buf.extend_from_slice(link);
    buf.extend_from_slice(data);
    true
}

impl<O: Output> PcapSink<O> {
    pub(crate) fn new(out: O, header: &LogHeader, link: LinkType) -> Result<Self, ExportError> {
        let snaplen = link.snaplen(if header.snaplen == 0 {
            SNAPLEN_FALLBACK
        } else {
            header.snaplen
        });
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen,
            datalink: link.data_link(),
            ts_resolution: PcapTsResolution::NanoSecond,
            // Fixed, so that the output does not depend on the machine, and
            // what `put_record` writes.
            endianness: Endianness::Little,
        };
        let mut buf = Vec::with_capacity(BUF_CAPACITY);
        header.write_to(&mut buf).map_err(write_err)?;
        Ok(PcapSink {
            out,
            buf,
            link,
            snaplen,
        })
    }

    /// What `pcap-file` says about a packet `put_record` refused.
    fn refusal(&self, record: &PacketRecord<'_>) -> String {
        let mut scratch = [0u8; SLL2_HEADER_LEN];
        let link = self.link.header(record, &mut scratch);
        let packet = PcapPacket::new(
            Duration::from_nanos(record.tstamp_ns),
            record.orig_len.saturating_add(link.len() as u32),
            Cow::Owned([link, record.data].concat()),
        );
        let mut writer = PcapWriter::with_header(
            std::io::sink(),
            PcapHeader {
                snaplen: self.snaplen,
                ts_resolution: PcapTsResolution::NanoSecond,
                ..PcapHeader::default()
            },
        )
        .expect("writing to io::sink cannot fail");
        match packet.map(|p| writer.write_packet(&p)) {
            Err(e) => error_chain(&e),
            Ok(Err(PcapWriteError::Validation(v))) => error_chain(&v),
            Ok(Err(e)) => error_chain(&e),
            Ok(Ok(_)) => "not representable in classic pcap".to_string(),
        }
    }

    /// Hands the buffered bytes to the output.
    fn drain(&mut self) -> Result<(), ExportError> {
        self.out.submit(&mut self.buf)?;
        Ok(())
    }
}

impl<'r, O: Output> ExportSink<'r> for PcapSink<O> {
    #[inline]
    fn record(&mut self, index: u64, record: &PacketRecord<'r>) -> Result<(), ExportError> {
        let mut scratch = [0u8; SLL2_HEADER_LEN];
        let link = self.link.header(record, &mut scratch);
        if !put_record(
            &mut self.buf,
            self.snaplen,
            record.tstamp_ns,
            record.orig_len,
            link,
            record.data,
        ) {
            return Err(ExportError::Encode {
                packet: index,
                reason: self.refusal(record),
            });
        }
        if self.buf.len() >= FLUSH_AT {
            self.drain()?;
        }
        Ok(())
    }

    fn interface(&mut self, _interface: &Interface) -> Result<(), ExportError> {
        Ok(())
    }

    fn finish(mut self, _ending: &Ending<'_>) -> Result<u32, ExportError> {
        self.drain()?;
        self.out.finish()?;
        Ok(0)
    }
}

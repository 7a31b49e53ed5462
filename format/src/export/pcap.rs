//! Classic pcap output, through `pcap-file`'s writer.
//!
//! Global header: nanosecond magic `0xA1B23C4D` (little-endian on disk:
//! `4D 3C B2 A1`), version 2.4, the log's snaplen, `LINKTYPE_RAW`. Each
//! packet: `ts_sec`, `ts_nsec`, `incl_len`, `orig_len`, data. Interfaces,
//! direction and statistics have no place in this format and are dropped.

use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapTsResolution, PcapWriteError, PcapWriter};
use pcap_file::{DataLink, Endianness};

use super::pcapng::error_chain;
use super::{Ending, ExportError, Sink};
use crate::log::{Interface, LogHeader};
use crate::record::PacketRecord;

/// Snap length written when the log header has none (0 would make every
/// packet "too long" for readers).
const SNAPLEN_FALLBACK: u32 = 65535;

pub(crate) struct PcapSink<W: Write> {
    writer: PcapWriter<W>,
}

impl<W: Write> std::fmt::Debug for PcapSink<W> {
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

impl<W: Write> PcapSink<W> {
    pub(crate) fn new(out: W, header: &LogHeader) -> Result<Self, ExportError> {
        let snaplen = if header.snaplen == 0 {
            SNAPLEN_FALLBACK
        } else {
            header.snaplen
        };
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen,
            datalink: DataLink::RAW,
            ts_resolution: PcapTsResolution::NanoSecond,
            // Fixed, so that the output does not depend on the machine.
            endianness: Endianness::Little,
        };
        let writer = PcapWriter::with_header(out, header).map_err(write_err)?;
        Ok(PcapSink { writer })
    }
}

impl<'r, W: Write> Sink<'r> for PcapSink<W> {
    fn record(&mut self, index: u64, record: &PacketRecord<'r>) -> Result<(), ExportError> {
        let encode = |reason: String| ExportError::Encode {
            packet: index,
            reason,
        };
        let packet = PcapPacket::new(
            Duration::from_nanos(record.tstamp_ns),
            record.orig_len,
            Cow::Borrowed(record.data),
        )
        .map_err(|e| encode(error_chain(&e)))?;
        self.writer.write_packet(&packet).map_err(|e| match e {
            PcapWriteError::Validation(v) => encode(error_chain(&v)),
            other => ExportError::Io(write_err(other)),
        })?;
        Ok(())
    }

    fn interface(&mut self, _interface: &Interface) -> Result<(), ExportError> {
        Ok(())
    }

    fn finish(mut self, _ending: &Ending<'_>) -> Result<u32, ExportError> {
        self.writer.flush().map_err(write_err)?;
        Ok(0)
    }
}

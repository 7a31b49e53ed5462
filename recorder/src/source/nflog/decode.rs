//! Decoding of NFLOG datagrams: one message per packet, their sequence
//! numbers turned into exact losses, the family filter, the log.

use imp2_format::filter::Program;
use imp2_format::log::Losses;
use imp2_format::nflog::{LoggedPacket, MalformedNflog, NflogMessage, NflogWalker, PacketParser};
use imp2_format::wire::abi::{FAMILY_F_IPV4, FAMILY_F_IPV6};
use imp2_format::{Family, PacketRecord};

use super::Settings;
use crate::log_sink::LogSink;
use crate::sys::now_ns;

/// Decoding of datagrams and the state it needs.
#[derive(Debug)]
pub(super) struct NflogDecoder {
    group: u16,
    families: u32,
    /// The capture filter (expression and interfaces), run per packet.
    program: Option<Program>,
    ifindexes: Vec<u32>,
    /// The sequence number the next packet should carry.
    next_seq: u32,
    /// Packets seen (recorded, filtered or skipped).
    pub(super) packets: u64,
    /// Gaps found in the sequence numbers.
    pub(super) seq_gaps: u64,
    /// Sequence numbers that went backwards (never from a sane kernel).
    pub(super) seq_backwards: u64,
    /// Packets without a sequence number (never from a sane kernel).
    pub(super) without_seq: u64,
    /// Records stamped with the receive time (no kernel timestamp).
    pub(super) receive_time_stamps: u64,
    /// Packets of families other than IPv4/IPv6 (ARP, bridge rules).
    pub(super) not_ip: u64,
    /// Packets of a family not selected with `--family`, or rejected by
    /// the capture filter.
    pub(super) filtered: u64,
    /// Of `filtered`: rejected by the filter expression or `-i`.
    pub(super) filter_rejected: u64,
    /// Messages of other types or groups.
    pub(super) other_messages: u64,
    pub(super) unbind_seq: Option<u32>,
    pub(super) unbind_errno: Option<i32>,
    pub(super) last_malformed: Option<MalformedNflog>,
    /// Message layouts learnt so far (the fast path of the parse).
    parser: PacketParser,
}

impl NflogDecoder {
    /// The decoder's initial state for `settings`.
    pub(super) fn new(settings: &Settings) -> NflogDecoder {
        NflogDecoder {
            group: settings.group,
            families: settings.families,
            program: settings.program.clone(),
            ifindexes: settings.ifindexes.clone(),
            next_seq: 0,
            packets: 0,
            seq_gaps: 0,
            seq_backwards: 0,
            without_seq: 0,
            receive_time_stamps: 0,
            not_ip: 0,
            filtered: 0,
            filter_rejected: 0,
            other_messages: 0,
            unbind_seq: None,
            unbind_errno: None,
            last_malformed: None,
            parser: PacketParser::default(),
        }
    }

    fn wants(&self, family: Family) -> bool {
        let bit = if family == Family::IPV4 {
            FAMILY_F_IPV4
        } else {
            FAMILY_F_IPV6
        };
        self.families & bit != 0
    }

    /// The capture filter on one record: 0 to reject it, else the most
    /// bytes to keep.
    #[inline]
    fn filter(&self, record: &PacketRecord<'_>) -> u32 {
        if !self.ifindexes.is_empty() && !self.ifindexes.contains(&record.ifindex) {
            return 0;
        }
        match &self.program {
            Some(p) => p.run(record.data, record.orig_len),
            None => u32::MAX,
        }
    }

    /// One packet of our group: sequence accounting, time, family filter,
    /// then the log. `losses` collects this datagram's gaps;
    /// `received_ns` is the datagram's receive time, read at most once.
    #[inline(always)]
    fn on_packet(
        &mut self,
        p: LoggedPacket<'_>,
        losses: &mut Losses,
        received_ns: &mut Option<u64>,
        sink: &mut LogSink,
    ) {
        self.packets += 1;
        match p.seq {
            Some(seq) => {
                let gap = seq.wrapping_sub(self.next_seq);
                if gap != 0 {
                    if gap < 1 << 31 {
                        losses.gap_records += u64::from(gap);
                        losses.gap_batches += 1;
                        self.seq_gaps += 1;
                    } else {
                        self.seq_backwards += 1;
                    }
                }
                self.next_seq = seq.wrapping_add(1);
            }
            None => self.without_seq += 1,
        }
        if !p.has_timestamp {
            self.receive_time_stamps += 1;
        }
        match p.record {
            Ok(mut record) if self.wants(record.family) => {
                let keep = self.filter(&record);
                if keep == 0 {
                    self.filtered += 1;
                    self.filter_rejected += 1;
                    return;
                }
                if !p.has_timestamp {
                    // The send hooks carry no kernel time stamp: the
                    // datagram's receive time (CLOCK_REALTIME) stands in.
                    record.tstamp_ns = *received_ns.get_or_insert_with(now_ns);
                }
                // The program's return value caps the bytes kept, as a
                // socket filter's does.
                let cut = record.data.len().min(keep as usize);
                record.data = &record.data[..cut];
                sink.append(&record);
            }
            Ok(_) => self.filtered += 1,
            Err(_) => self.not_ip += 1,
        }
    }

    /// The hot path: walk one datagram, append its records, account.
    pub(super) fn decode(&mut self, buf: &[u8], truncated: bool, sink: &mut LogSink) {
        sink.on_datagram(buf.len());
        let mut losses = Losses::default();
        if truncated {
            // The messages that fit are kept; the cut ones show up as a
            // sequence gap at the next packet.
            losses.truncated_batches = 1;
        }
        let mut malformed = false;
        // CLOCK_REALTIME when this datagram was handled, read once, only if
        // a packet lacks the kernel's timestamp.
        let mut received_ns = None;
        // The parser keeps the layouts it learnt across datagrams.
        let mut walker = NflogWalker::with_parser(buf, self.parser);
        loop {
            // Packets of the usual shape take the fast path; everything
            // else (new shapes, DONE, ACKs, errors) comes through `next`.
            if let Some(p) = walker.next_packet() {
                if p.group == self.group {
                    self.on_packet(p, &mut losses, &mut received_ns, sink);
                } else {
                    self.other_messages += 1;
                }
                continue;
            }
            let Some(item) = walker.next() else {
                break;
            };
            let item = match item {
                Ok(item) => item,
                // The cut end of a truncated datagram is not malformed.
                Err(m) if truncated && !m.reason.is_recoverable() => continue,
                Err(m) => {
                    malformed = true;
                    self.last_malformed = Some(m);
                    continue;
                }
            };
            match item.message {
                NflogMessage::Packet(p) if p.group == self.group => {
                    self.on_packet(p.logged(), &mut losses, &mut received_ns, sink);
                }
                NflogMessage::Error { errno, request } => {
                    // The kernel includes the request's header; its seq is
                    // also in the ACK's own header.
                    let seq = request.map_or(item.header.seq, |r| r.seq);
                    if self.unbind_seq == Some(seq) {
                        self.unbind_errno = Some(errno);
                    } else {
                        self.other_messages += 1;
                    }
                }
                NflogMessage::Done | NflogMessage::Noop => {}
                NflogMessage::Packet(_) | NflogMessage::Overrun | NflogMessage::Other { .. } => {
                    self.other_messages += 1;
                }
            }
        }
        self.parser = walker.parser();
        if malformed {
            losses.malformed_messages += 1;
        }
        sink.commit();
        sink.add_losses(&losses);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imp2_format::log::{LogHeader, LogWriter, StopCause, StopReason};
    use imp2_format::nflog::{PacketMessage, Timestamp, consts, emit_done};
    use imp2_format::wire::NlHeader;

    use crate::interfaces::KnownInterfaces;

    const IP: [u8; 28] = [
        0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 199, 0, 1, 10, 199, 0, 2, 0x30, 0x39, 0x27,
        0x0f, 0, 8, 0, 0,
    ];

    fn decoder(families: u32) -> NflogDecoder {
        let settings = Settings {
            group: 3,
            snaplen: 100,
            bufsize: 131_072,
            qthresh: 10,
            flush_ms: 100,
            rcvbuf: 1 << 20,
            families,
            program: None,
            ifindexes: Vec::new(),
        };
        NflogDecoder::new(&settings)
    }

    fn sink(dir: &tempfile::TempDir) -> LogSink {
        let header = LogHeader {
            tsresol_digits: 6,
            ..Default::default()
        };
        let writer = LogWriter::create(&dir.path().join("t.log"), &header).unwrap();
        let mut known = KnownInterfaces::default();
        known.insert(1);
        LogSink::new(writer, known, u64::MAX)
    }

    fn packet(seq: u32, family: u8, stamped: bool) -> PacketMessage<'static> {
        PacketMessage {
            family,
            group: 3,
            hw_protocol: 0x0800,
            hook: if stamped { 1 } else { 3 },
            indev: Some(1),
            outdev: Some(1),
            timestamp: stamped.then_some(Timestamp { sec: 7, usec: 8 }),
            seq: Some(seq),
            payload: Some(&IP),
            ..Default::default()
        }
    }

    fn datagram(seqs: impl IntoIterator<Item = u32>) -> Vec<u8> {
        let mut buf = Vec::new();
        for seq in seqs {
            packet(seq, consts::AF_INET, true).emit(&mut buf);
        }
        emit_done(3, &mut buf);
        buf
    }

    #[test]
    fn sequence_gaps_are_lost_packets() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&dir);
        let mut d = decoder(FAMILY_F_IPV4 | FAMILY_F_IPV6);
        // Packets 0-2, then 3-5 lost (a buffer the kernel could not
        // deliver), then 6-7; then 8-9 lost and 10.
        d.decode(&datagram(0..3), false, &mut sink);
        d.decode(&datagram(6..8), false, &mut sink);
        d.decode(&datagram([10]), false, &mut sink);
        assert_eq!(sink.written, 6);
        assert_eq!(sink.losses().gap_records, 5);
        assert_eq!(sink.losses().gap_batches, 2);
        assert_eq!((d.seq_gaps, d.seq_backwards, d.packets), (2, 0, 6));
    }

    #[test]
    fn the_first_packet_is_seq_0_and_wraparound_is_no_gap() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&dir);
        let mut d = decoder(FAMILY_F_IPV4);
        // Two packets logged before the first one received were lost.
        d.decode(&datagram([2]), false, &mut sink);
        assert_eq!(sink.losses().gap_records, 2);
        d.next_seq = u32::MAX - 1;
        d.decode(&datagram([u32::MAX - 1, u32::MAX, 0, 1]), false, &mut sink);
        assert_eq!(sink.losses().gap_records, 2);
        // Going backwards is counted, never turned into a huge loss.
        d.decode(&datagram([0]), false, &mut sink);
        assert_eq!(sink.losses().gap_records, 2);
        assert_eq!(d.seq_backwards, 1);
        assert_eq!(sink.written, 6);
    }

    #[test]
    fn families_timestamps_and_other_messages_are_sorted_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&dir);
        let mut d = decoder(FAMILY_F_IPV4);
        let mut buf = Vec::new();
        packet(0, consts::AF_INET, false).emit(&mut buf); // recorded, receive time
        packet(1, consts::AF_INET6, true).emit(&mut buf); // --family 4: filtered
        packet(2, 7, true).emit(&mut buf); // bridge/ARP family: not IP
        let mut other = packet(3, consts::AF_INET, true);
        other.group = 4; // another group: not ours
        other.emit(&mut buf);
        let before = now_ns();
        d.decode(&buf, false, &mut sink);
        assert_eq!(sink.written, 1);
        assert_eq!(
            (
                d.receive_time_stamps,
                d.filtered,
                d.not_ip,
                d.other_messages
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(d.packets, 3);
        assert!(sink.losses().is_zero(), "{:?}", sink.losses());
        let stop = StopReason::new(StopCause::Signal, "SIGINT");
        let footer = sink.finish(now_ns(), stop.clone()).0.unwrap();
        assert!(footer.first_ns >= before, "receive time used: {footer:?}");
        assert_eq!(footer.stop, Some(stop));
    }

    #[test]
    fn truncated_and_malformed_datagrams_are_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&dir);
        let mut d = decoder(FAMILY_F_IPV4);
        let full = datagram(0..3);
        // Cut inside the third message: two kept, the cut is not malformed.
        d.decode(&full[..full.len() - 40], true, &mut sink);
        assert_eq!(sink.written, 2);
        assert_eq!(sink.losses().truncated_batches, 1);
        assert_eq!(sink.losses().malformed_messages, 0);
        // The next packet reveals the cut one as a gap.
        d.decode(&datagram([3]), false, &mut sink);
        assert_eq!(sink.losses().gap_records, 1);
        // A packet message without its header attribute: malformed, once.
        let mut bad = datagram(4..6);
        bad[22] = 0xee; // retype NFULA_PACKET_HDR of the first message
        d.decode(&bad, false, &mut sink);
        assert_eq!(sink.losses().malformed_messages, 1);
        assert_eq!(sink.written, 4);
        assert!(d.last_malformed.is_some());
    }

    #[test]
    fn the_unbind_ack_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&dir);
        let mut d = decoder(FAMILY_F_IPV4);
        d.unbind_seq = Some(9);
        let ack = |seq: u32| {
            let mut b = vec![0u8; 36];
            NlHeader {
                len: 36,
                msg_type: 2,
                flags: 0,
                seq,
                pid: 0,
            }
            .write(&mut b);
            NlHeader {
                len: 28,
                msg_type: consts::MSG_CONFIG,
                flags: 5,
                seq,
                pid: 1,
            }
            .write(&mut b[20..]);
            b
        };
        d.decode(&ack(8), false, &mut sink);
        assert_eq!(d.unbind_errno, None);
        assert_eq!(d.other_messages, 1);
        d.decode(&ack(9), false, &mut sink);
        assert_eq!(d.unbind_errno, Some(0));
    }
}

//! Where records go: the log writer, plus what the recorder counts on the
//! way (records written, the `-c` limit, interfaces to name, batches).
//! Shared by every source.

use imp2_format::PacketRecord;
use imp2_format::log::{Interface, LogWriter, Losses, WriteError};

use crate::interfaces::{self, KnownInterfaces};

/// The log and the run's counters.
#[derive(Debug)]
pub struct Sink {
    writer: LogWriter,
    known: KnownInterfaces,
    /// Interface of the last record appended (already named).
    last_ifindex: Option<u32>,
    limit: u64,
    /// Records written (appended; committed at the end of their batch).
    pub written: u64,
    /// Records that arrived after the `-c` limit was reached.
    pub beyond_count: u64,
    /// Datagrams received.
    pub batches: u64,
    /// Bytes received.
    pub received_bytes: u64,
}

impl Sink {
    /// A sink writing to `writer`, naming interfaces not in `known` when
    /// they first appear, and writing at most `limit` records.
    pub fn new(writer: LogWriter, known: KnownInterfaces, limit: u64) -> Sink {
        Sink {
            writer,
            known,
            last_ifindex: None,
            limit,
            written: 0,
            beyond_count: 0,
            batches: 0,
            received_bytes: 0,
        }
    }

    /// Counts a received datagram.
    #[inline]
    pub fn on_datagram(&mut self, len: usize) {
        self.batches += 1;
        self.received_bytes += len as u64;
    }

    /// Whether the `-c` limit is reached.
    pub fn limit_reached(&self) -> bool {
        self.written >= self.limit
    }

    /// Appends one record (unless the limit is reached), naming its
    /// interface in the log first if it is new.
    // Always inlined into the sources' walk loops: the record's fields stay
    // in registers; the rare cases are out of line.
    #[inline(always)]
    pub fn append(&mut self, record: &PacketRecord<'_>) -> Result<(), WriteError> {
        if self.written >= self.limit {
            self.beyond_count += 1;
            return Ok(());
        }
        // Consecutive records nearly always share their interface: one
        // comparison instead of a lookup.
        if Some(record.ifindex) != self.last_ifindex {
            self.new_ifindex(record.ifindex)?;
        }
        self.writer.append(record)?;
        self.written += 1;
        Ok(())
    }

    /// A record's interface differs from the previous record's: names it
    /// in the log if it was never seen.
    #[cold]
    #[inline(never)]
    fn new_ifindex(&mut self, ifindex: u32) -> Result<(), WriteError> {
        if !self.known.contains(ifindex) {
            self.known.insert(ifindex);
            let name = interfaces::name_of(ifindex);
            // Commits what was appended so far, with its own frame.
            self.writer.add_interface(&Interface { ifindex, name })?;
        }
        self.last_ifindex = Some(ifindex);
        Ok(())
    }

    /// Makes everything appended so far durable against a crash of the
    /// recorder (one commit per received batch).
    pub fn commit(&mut self) -> Result<(), WriteError> {
        self.writer.commit()
    }

    /// Records losses (a delta) in the log.
    pub fn add_losses(&mut self, delta: &Losses) -> Result<(), WriteError> {
        if delta.is_zero() {
            return Ok(());
        }
        self.writer.add_losses(delta)
    }

    /// Losses so far.
    pub fn losses(&self) -> &Losses {
        self.writer.losses()
    }

    /// The writer, to flush or finish it.
    pub fn writer(&mut self) -> &mut LogWriter {
        &mut self.writer
    }

    /// Gives the writer back, to finish the log.
    pub fn into_writer(self) -> LogWriter {
        self.writer
    }
}

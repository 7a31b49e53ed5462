//! Where records go: the log writer, plus what the recorder counts on the
//! way (records written, the `-c` limit, interfaces to name, batches).
//! Shared by every source.

use imp2_format::PacketRecord;
use imp2_format::log::{Footer, Interface, LogWriter, Losses, StopReason, WriteError};

use crate::interfaces::{self, KnownInterfaces};

/// The log and the run's counters.
#[derive(Debug)]
pub struct LogSink {
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
    /// The first write error. From then on nothing is written: records
    /// are counted in `after_error.unwritten` and losses gathered in
    /// `after_error`, which closing the log writes (it has room held back
    /// for that), so that what a full disk cost is in the log, exactly.
    error: Option<WriteError>,
    after_error: Losses,
}

impl LogSink {
    /// A sink writing to `writer`, naming interfaces not in `known` when
    /// they first appear, and writing at most `limit` records.
    pub fn new(writer: LogWriter, known: KnownInterfaces, limit: u64) -> LogSink {
        LogSink {
            writer,
            known,
            last_ifindex: None,
            limit,
            written: 0,
            beyond_count: 0,
            batches: 0,
            received_bytes: 0,
            error: None,
            after_error: Losses::default(),
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
    /// interface in the log first if it is new. After a write error it only
    /// counts the record as unwritten.
    // Always inlined into the sources' walk loops: the record's fields stay
    // in registers; the rare cases are out of line.
    #[inline(always)]
    pub fn append(&mut self, record: &PacketRecord<'_>) {
        if self.written >= self.limit {
            self.beyond_count += 1;
            return;
        }
        // Consecutive records nearly always share their interface: one
        // comparison instead of a lookup.
        if Some(record.ifindex) != self.last_ifindex {
            self.new_ifindex(record.ifindex);
        }
        if self.error.is_some() {
            self.after_error.unwritten += 1;
            return;
        }
        match self.writer.append(record) {
            Ok(()) => self.written += 1,
            Err(e) => self.append_failed(e),
        }
    }

    #[cold]
    #[inline(never)]
    fn append_failed(&mut self, e: WriteError) {
        self.fail(e);
        self.after_error.unwritten += 1;
    }

    /// A record's interface differs from the previous record's: names it
    /// in the log if it was never seen.
    #[cold]
    #[inline(never)]
    fn new_ifindex(&mut self, ifindex: u32) {
        if self.error.is_some() {
            return;
        }
        if !self.known.contains(ifindex) {
            self.known.insert(ifindex);
            let name = interfaces::name_of(ifindex);
            // Commits what was appended so far, with its own frame.
            if let Err(e) = self.writer.add_interface(&Interface { ifindex, name }) {
                self.fail(e);
                return;
            }
        }
        self.last_ifindex = Some(ifindex);
    }

    /// Makes everything appended so far durable against a crash of the
    /// recorder (one commit per received batch).
    pub fn commit(&mut self) {
        if self.error.is_none()
            && let Err(e) = self.writer.commit()
        {
            self.fail(e);
        }
    }

    /// Records losses (a delta) in the log.
    pub fn add_losses(&mut self, delta: &Losses) {
        if delta.is_zero() {
            return;
        }
        if self.error.is_none() {
            match self.writer.add_losses(delta) {
                Ok(()) => return,
                Err(e) => self.fail(e),
            }
        }
        self.after_error.add(delta);
    }

    /// Stops writing: `e` is kept for the summary.
    pub fn fail(&mut self, e: WriteError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// The write error that stopped the log, if any.
    pub fn error(&self) -> Option<&WriteError> {
        self.error.as_ref()
    }

    /// Losses so far, those counted after a write error included.
    pub fn losses(&self) -> Losses {
        let mut total = *self.writer.losses();
        total.add(&self.after_error);
        total
    }

    /// Bytes of the log committed so far, header included (with direct I/O:
    /// written), for the status line's write rate.
    pub fn log_bytes(&self) -> u64 {
        self.writer.committed_len()
    }

    /// The writer, to flush or finish it.
    pub fn writer(&mut self) -> &mut LogWriter {
        &mut self.writer
    }

    /// Closes the log: the losses counted after a write error first, then
    /// the footer, which records `stop`. Returns the footer, or the error of
    /// closing, and the write error that stopped the log, if any.
    pub fn finish(
        mut self,
        closed_ns: u64,
        stop: StopReason,
    ) -> (Result<Footer, WriteError>, Option<WriteError>) {
        self.writer.set_stop(stop);
        let footer = self.writer.finish_with_losses(&self.after_error, closed_ns);
        (footer, self.error)
    }
}

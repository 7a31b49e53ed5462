//! A producer of batches the recorder can receive from: the imp2 module (or
//! its stand-in imp2-loadgen), or the kernel's NFLOG. Each source owns its
//! netlink socket, its control conversation (start, stop) and the decoding
//! of its datagrams into records and losses; the receive loop, the log and
//! the reporting are shared.
//!
//! - [`imp2`]: the module's source; `imp2/socket.rs` its socket and
//!   REGISTER/UNREGISTER, `imp2/accounting.rs` the trailers' loss accounting.
//! - [`nflog`]: the NFLOG source; `nflog/bind.rs` its settings and BIND,
//!   `nflog/decode.rs` its datagram decoder.
//! - `netlink.rs`: the socket setup both share.

use std::os::fd::RawFd;

use crate::log_sink::LogSink;
use crate::session::RunError;

pub mod imp2;
mod netlink;
pub mod nflog;

/// A producer of batched capture records.
pub trait Source {
    /// The socket to receive from.
    fn fd(&self) -> RawFd;

    /// Size of the receive buffers: one must hold the largest datagram.
    fn datagram_len(&self) -> usize;

    /// What to write as the log's source description.
    fn description(&self) -> String;

    /// Decimal digits of timestamp resolution (9: ns, 6: µs).
    fn tsresol_digits(&self) -> u8;

    /// Snap length in force, bytes.
    fn snaplen(&self) -> u32;

    /// Starts the capture (register, bind) and waits for the producer to
    /// agree. Datagrams arriving meanwhile are decoded into `sink`.
    fn start(&mut self, sink: &mut LogSink) -> Result<(), RunError>;

    /// Decodes one received datagram: appends its records to `sink`,
    /// commits them, and records what it reveals as lost.
    fn on_datagram(&mut self, buf: &[u8], truncated: bool, sink: &mut LogSink);

    /// Asks the producer to stop and flush; its acknowledgement arrives
    /// through [`Source::on_datagram`] after the final batches.
    fn request_stop(&mut self) -> Result<(), String>;

    /// Whether the producer acknowledged the stop request.
    fn stop_acknowledged(&self) -> bool;

    /// Called once a second while idle-waiting: a source may print hints
    /// (e.g. no records after a while).
    fn on_tick(&mut self, _sink: &LogSink, _notice: &mut dyn FnMut(String)) {}

    /// Set when the producer went away (a user-space stand-in exited):
    /// nothing more can arrive, so the run ends; says why.
    fn gone(&self) -> Option<&str> {
        None
    }

    /// Source-specific facts for the summary, as `(key, JSON value)`.
    fn summary_fields(&self) -> Vec<(&'static str, serde_json::Value)>;

    /// The last malformed message seen, if any.
    fn last_malformed(&self) -> Option<String>;
}

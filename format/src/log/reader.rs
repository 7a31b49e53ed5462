//! Reading and verifying a log. (Contract: implementation in progress.)

use std::path::Path;

use super::{Footer, Interface, LogHeader, Losses};
use crate::record::PacketRecord;

/// What went wrong reading a log.
#[derive(Debug)]
pub enum ReadErrorKind {
    /// The file could not be opened or mapped.
    Io(std::io::Error),
    /// The file does not start with the imp2 log magic.
    NotALog,
    /// Written by a newer, incompatible format version.
    UnsupportedVersion {
        /// Major version found.
        major: u16,
        /// Minor version found.
        minor: u16,
    },
    /// The header is damaged (reason).
    BadHeader(String),
    /// The header says more bytes are committed than the file holds.
    TornTail {
        /// Committed length claimed by the header.
        committed: u64,
        /// Actual file length.
        file_len: u64,
    },
    /// A frame's checksum does not match.
    BadChecksum {
        /// Checksum stored in the frame.
        stored: u32,
        /// Checksum computed over its bytes.
        computed: u32,
    },
    /// A frame's structure is invalid (reason).
    BadFrame(String),
}

/// A read error and the byte offset in the file where it was found.
#[derive(Debug)]
pub struct ReadError {
    /// File offset of the damaged header or frame.
    pub offset: u64,
    /// What is wrong.
    pub kind: ReadErrorKind,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at byte {}: {:?}", self.offset, self.kind)
    }
}

impl std::error::Error for ReadError {}

/// One item of a log, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEvent<'a> {
    /// A captured packet.
    Record(PacketRecord<'a>),
    /// An interface seen after the header was written.
    Interface(Interface),
    /// Losses learnt at this point of the run (a delta).
    Losses(Losses),
    /// The footer of a cleanly closed log (always the last event).
    Footer(Footer),
}

/// A log mapped read-only.
#[derive(Debug)]
pub struct LogReader {
    _private: (),
}

impl LogReader {
    /// Maps and checks the header of the log at `path`.
    pub fn open(path: &Path) -> Result<LogReader, ReadError> {
        let _ = path;
        todo!()
    }

    /// Reads a log held in memory (tests, fuzzing).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<LogReader, ReadError> {
        let _ = bytes;
        todo!()
    }

    /// The header.
    pub fn header(&self) -> &LogHeader {
        todo!()
    }

    /// Bytes the header says are committed.
    pub fn committed_len(&self) -> u64 {
        todo!()
    }

    /// Bytes past the committed length (a torn, uncommitted tail left by a
    /// recorder that died; ignored by readers).
    pub fn uncommitted_len(&self) -> u64 {
        todo!()
    }

    /// Whether the log was closed cleanly (footer present).
    pub fn is_closed(&self) -> bool {
        todo!()
    }

    /// Every event in the committed prefix, in order, verifying each frame.
    /// Stops after the first error, which is yielded as the last item.
    pub fn events(&self) -> impl Iterator<Item = Result<LogEvent<'_>, ReadError>> + '_ {
        let _ = self;
        std::iter::empty::<Result<LogEvent<'_>, ReadError>>()
    }
}

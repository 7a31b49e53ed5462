//! imp2-format: the formats at the heart of imp2, and the file I/O of its
//! log.
//!
//! Encoding, decoding and export are pure; the log writer and reader are
//! not: the writer locks the log file, reserves its space (fallocate),
//! maps it, writes with pwrite or through O_DIRECT writer threads, and the
//! reader maps the file it verifies. Only those modules talk to the kernel
//! directly and may use `unsafe` (`#[allow(unsafe_code)]` on each); the rest
//! of the crate is safe code.
//!
//! - [`wire`]: the netlink ABI between the kernel module and the recorder
//!   (mirror of `kmod/imp2_uapi.h`), a validating batch walker and an emitter.
//! - [`log`]: the compact on-disk log (`format/FORMAT.md`), its mmap writer
//!   and its verifying reader.
//! - [`export`]: streaming conversion of a log to pcapng or classic pcap.
//! - [`nflog`]: the kernel's nfnetlink_log messages, the recorder's other
//!   source.
//! - [`ip`]: what a packet's IP header says (family, length, protocol).
//!
//! [`record`] holds the one type all three share: a captured packet;
//! [`crc`] the CRC32C every header and frame carries.

#![deny(unsafe_code)]

pub mod crc;
pub mod export;
pub mod filter;
pub mod ip;
pub mod log;
pub mod nflog;
pub mod record;
pub mod wire;

pub use record::{Family, Hook, PacketRecord};

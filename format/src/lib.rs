//! imp2-format: the formats at the heart of imp2, apart from any I/O.
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
//! [`record`] holds the one type all three share: a captured packet.

mod crc;
pub mod export;
pub mod filter;
pub mod ip;
pub mod log;
pub mod nflog;
pub mod record;
pub mod synth;
pub mod wire;

pub use record::{Family, Hook, PacketRecord, RecordDigest};

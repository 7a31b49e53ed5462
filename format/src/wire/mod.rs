//! The imp2 netlink wire ABI: typed views over the bytes of
//! `kmod/imp2_uapi.h`, the netlink framing every walker shares
//! ([`Frames`]), a validating walker over received batches, and an emitter
//! that builds batches byte for byte like the module.
//!
//! Nothing here does I/O. Netlink is host-endian, so every integer is read
//! and written in native byte order.

pub mod abi;
mod emit;
mod frame;
pub mod register;
mod walker;

pub use emit::{
    BatchBuilder, BatchFull, TRAILER_MESSAGE_LEN, ack_message, register_filtered_message,
    register_message, unregister_message,
};
pub use frame::{Frame, FrameError, Frames, FramingError, Located, NlError};
pub use register::{Register, RegisterFilter};
pub use walker::{BatchItem, BatchMessage, BatchWalker, MalformedBatch, MalformedBatchReason};

use abi::Field;

/// Reads a native-endian integer field; `buf` must hold `base + field`
/// (callers check the length once, up front).
fn get<const N: usize>(buf: &[u8], base: usize, field: Field) -> [u8; N] {
    debug_assert_eq!(field.size, N);
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[field.at(base)]);
    out
}

fn get_u16(buf: &[u8], base: usize, field: Field) -> u16 {
    u16::from_ne_bytes(get(buf, base, field))
}

fn get_u32(buf: &[u8], base: usize, field: Field) -> u32 {
    u32::from_ne_bytes(get(buf, base, field))
}

fn get_u64(buf: &[u8], base: usize, field: Field) -> u64 {
    u64::from_ne_bytes(get(buf, base, field))
}

fn put(buf: &mut [u8], base: usize, field: Field, bytes: &[u8]) {
    debug_assert_eq!(field.size, bytes.len());
    buf[field.at(base)].copy_from_slice(bytes);
}

/// A parsed `struct nlmsghdr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NlHeader {
    /// `nlmsg_len`: whole message length, header included, unpadded.
    pub len: u32,
    /// `nlmsg_type`
    pub msg_type: u16,
    /// `nlmsg_flags`
    pub flags: u16,
    /// `nlmsg_seq`
    pub seq: u32,
    /// `nlmsg_pid`: sender port id (0 for the kernel).
    pub pid: u32,
}

impl NlHeader {
    /// Parses the header at the start of `buf`; `None` when `buf` is
    /// shorter than a header.
    pub fn parse(buf: &[u8]) -> Option<NlHeader> {
        if buf.len() < abi::NLMSG_HDRLEN {
            return None;
        }
        Some(NlHeader {
            len: get_u32(buf, 0, abi::nlmsghdr::LEN),
            msg_type: get_u16(buf, 0, abi::nlmsghdr::TYPE),
            flags: get_u16(buf, 0, abi::nlmsghdr::FLAGS),
            seq: get_u32(buf, 0, abi::nlmsghdr::SEQ),
            pid: get_u32(buf, 0, abi::nlmsghdr::PID),
        })
    }

    /// Writes the header into the first 16 bytes of `buf`.
    pub fn write(&self, buf: &mut [u8]) {
        put(buf, 0, abi::nlmsghdr::LEN, &self.len.to_ne_bytes());
        put(buf, 0, abi::nlmsghdr::TYPE, &self.msg_type.to_ne_bytes());
        put(buf, 0, abi::nlmsghdr::FLAGS, &self.flags.to_ne_bytes());
        put(buf, 0, abi::nlmsghdr::SEQ, &self.seq.to_ne_bytes());
        put(buf, 0, abi::nlmsghdr::PID, &self.pid.to_ne_bytes());
    }
}

/// The REGISTER payload (`struct imp2_config`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// `IMP2_ABI_VERSION` of the sender.
    pub abi_version: u32,
    /// Bytes captured per packet.
    pub snaplen: u32,
    /// `IMP2_HOOK_F_*` bits.
    pub hooks: u32,
    /// `IMP2_FAMILY_F_*` bits.
    pub families: u32,
    /// Batch skb size in bytes, kernel overhead included.
    pub batch_bytes: u32,
    /// Records per batch at most.
    pub batch_records: u32,
    /// Flush interval in microseconds.
    pub flush_interval_us: u32,
    /// `IMP2_CONFIG_F_*` bits (see [`register::Register`]).
    pub flags: u32,
    /// Bitmap of transport protocols to capture; all zero means all.
    pub protocols: [u8; 32],
}

impl Default for Config {
    fn default() -> Config {
        Config {
            abi_version: abi::ABI_VERSION,
            snaplen: abi::SNAPLEN_DEFAULT,
            hooks: abi::HOOK_F_ALL,
            families: abi::FAMILY_F_ALL,
            batch_bytes: abi::BATCH_BYTES_DEFAULT,
            batch_records: abi::BATCH_RECORDS_DEFAULT,
            flush_interval_us: abi::FLUSH_INTERVAL_US_DEFAULT,
            flags: 0,
            protocols: [0; 32],
        }
    }
}

/// Why a configuration is refused; the module answers `EPROTO` for a
/// version mismatch and `EINVAL` for everything else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Payload shorter than `struct imp2_config`.
    Short(usize),
    /// ABI version the receiver does not speak.
    Version(u32),
    /// A field outside its documented bounds: (field, value, allowed range).
    OutOfRange(&'static str, u32, String),
    /// The filter extension is malformed or its program refused.
    Filter(String),
}

impl ConfigError {
    /// The errno a module answers with (positive).
    pub fn errno(&self) -> i32 {
        match self {
            ConfigError::Version(_) => libc::EPROTO,
            _ => libc::EINVAL,
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Short(n) => write!(
                f,
                "config payload is {n} bytes, expected at least {}",
                abi::config::SIZE
            ),
            ConfigError::Version(v) => {
                write!(
                    f,
                    "ABI version {v} not supported (this is version {})",
                    abi::ABI_VERSION
                )
            }
            ConfigError::OutOfRange(name, v, range) => {
                write!(f, "{name} = {v} is out of range ({range})")
            }
            ConfigError::Filter(why) => write!(f, "bad filter: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses and validates a REGISTER payload exactly as the module does.
    pub fn parse(payload: &[u8]) -> Result<Config, ConfigError> {
        if payload.len() < abi::config::SIZE {
            return Err(ConfigError::Short(payload.len()));
        }
        let config = Config {
            abi_version: get_u32(payload, 0, abi::config::ABI_VERSION),
            snaplen: get_u32(payload, 0, abi::config::SNAPLEN),
            hooks: get_u32(payload, 0, abi::config::HOOKS),
            families: get_u32(payload, 0, abi::config::FAMILIES),
            batch_bytes: get_u32(payload, 0, abi::config::BATCH_BYTES),
            batch_records: get_u32(payload, 0, abi::config::BATCH_RECORDS),
            flush_interval_us: get_u32(payload, 0, abi::config::FLUSH_INTERVAL_US),
            flags: get_u32(payload, 0, abi::config::FLAGS),
            protocols: get(payload, 0, abi::config::PROTOCOLS),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every field against the bounds of `imp2_uapi.h`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.abi_version != abi::ABI_VERSION {
            return Err(ConfigError::Version(self.abi_version));
        }
        let check = |name: &'static str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange(name, v, format!("{lo}..={hi}")))
            }
        };
        check("snaplen", self.snaplen, 1, abi::SNAPLEN_MAX)?;
        check(
            "batch_bytes",
            self.batch_bytes,
            abi::BATCH_BYTES_MIN,
            abi::BATCH_BYTES_MAX,
        )?;
        check(
            "batch_records",
            self.batch_records,
            1,
            abi::BATCH_RECORDS_MAX,
        )?;
        check(
            "flush_interval_us",
            self.flush_interval_us,
            abi::FLUSH_INTERVAL_US_MIN,
            abi::FLUSH_INTERVAL_US_MAX,
        )?;
        let mask = |name: &'static str, v: u32, all: u32| {
            if v != 0 && v & !all == 0 {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange(
                    name,
                    v,
                    format!("non-empty subset of {all:#x}"),
                ))
            }
        };
        mask("hooks", self.hooks, abi::HOOK_F_ALL)?;
        mask("families", self.families, abi::FAMILY_F_ALL)?;
        if self.flags & !abi::CONFIG_F_ALL != 0 {
            return Err(ConfigError::OutOfRange(
                "flags",
                self.flags,
                format!("subset of {:#x}", abi::CONFIG_F_ALL),
            ));
        }
        Ok(())
    }

    /// Encodes as a `struct imp2_config`.
    pub fn to_bytes(&self) -> [u8; abi::config::SIZE] {
        let mut b = [0u8; abi::config::SIZE];
        put(
            &mut b,
            0,
            abi::config::ABI_VERSION,
            &self.abi_version.to_ne_bytes(),
        );
        put(&mut b, 0, abi::config::SNAPLEN, &self.snaplen.to_ne_bytes());
        put(&mut b, 0, abi::config::HOOKS, &self.hooks.to_ne_bytes());
        put(
            &mut b,
            0,
            abi::config::FAMILIES,
            &self.families.to_ne_bytes(),
        );
        put(
            &mut b,
            0,
            abi::config::BATCH_BYTES,
            &self.batch_bytes.to_ne_bytes(),
        );
        put(
            &mut b,
            0,
            abi::config::BATCH_RECORDS,
            &self.batch_records.to_ne_bytes(),
        );
        put(
            &mut b,
            0,
            abi::config::FLUSH_INTERVAL_US,
            &self.flush_interval_us.to_ne_bytes(),
        );
        put(&mut b, 0, abi::config::FLAGS, &self.flags.to_ne_bytes());
        put(&mut b, 0, abi::config::PROTOCOLS, &self.protocols);
        b
    }

    /// Adds a transport protocol to the filter.
    pub fn allow_protocol(&mut self, protocol: u8) {
        self.protocols[usize::from(protocol / 8)] |= 1 << (protocol % 8);
    }

    /// Whether the filter lets `protocol` through (an empty filter lets all).
    pub fn captures_protocol(&self, protocol: u8) -> bool {
        self.protocols.iter().all(|&b| b == 0)
            || self.protocols[usize::from(protocol / 8)] & (1 << (protocol % 8)) != 0
    }
}

/// The NLMSG_DONE payload that ends a batch (`struct imp2_batch_trailer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BatchTrailer {
    /// Always 0 from a well-behaved sender.
    pub status: i32,
    /// CPU whose sequence space this batch belongs to.
    pub cpu: u32,
    /// Batch number on that CPU since REGISTER, from 1.
    pub seq: u64,
    /// RECORD messages in this batch.
    pub records: u32,
    /// `IMP2_TRAILER_F_*` bits.
    pub flags: u32,
    /// Records this CPU handed to netlink successfully, this batch included.
    pub records_total: u64,
    /// Records dropped since this CPU's previous batch, by cause.
    pub dropped: [u64; abi::DROP_CAUSES],
    /// Running totals of `dropped`.
    pub dropped_total: [u64; abi::DROP_CAUSES],
}

impl BatchTrailer {
    /// Parses a DONE payload; `None` if it is shorter than the trailer.
    pub fn parse(payload: &[u8]) -> Option<BatchTrailer> {
        if payload.len() < abi::trailer::SIZE {
            return None;
        }
        let array = |field: Field| {
            let mut out = [0u64; abi::DROP_CAUSES];
            for (i, v) in out.iter_mut().enumerate() {
                let f = Field {
                    offset: field.offset + 8 * i,
                    size: 8,
                };
                *v = get_u64(payload, 0, f);
            }
            out
        };
        Some(BatchTrailer {
            status: get_u32(payload, 0, abi::trailer::STATUS) as i32,
            cpu: get_u32(payload, 0, abi::trailer::CPU),
            seq: get_u64(payload, 0, abi::trailer::SEQ),
            records: get_u32(payload, 0, abi::trailer::RECORDS),
            flags: get_u32(payload, 0, abi::trailer::FLAGS),
            records_total: get_u64(payload, 0, abi::trailer::RECORDS_TOTAL),
            dropped: array(abi::trailer::DROPPED),
            dropped_total: array(abi::trailer::DROPPED_TOTAL),
        })
    }

    /// Encodes as a `struct imp2_batch_trailer`.
    pub fn to_bytes(&self) -> [u8; abi::trailer::SIZE] {
        let mut b = [0u8; abi::trailer::SIZE];
        put(&mut b, 0, abi::trailer::STATUS, &self.status.to_ne_bytes());
        put(&mut b, 0, abi::trailer::CPU, &self.cpu.to_ne_bytes());
        put(&mut b, 0, abi::trailer::SEQ, &self.seq.to_ne_bytes());
        put(
            &mut b,
            0,
            abi::trailer::RECORDS,
            &self.records.to_ne_bytes(),
        );
        put(&mut b, 0, abi::trailer::FLAGS, &self.flags.to_ne_bytes());
        put(
            &mut b,
            0,
            abi::trailer::RECORDS_TOTAL,
            &self.records_total.to_ne_bytes(),
        );
        for i in 0..abi::DROP_CAUSES {
            let d = abi::trailer::DROPPED.offset + 8 * i;
            b[d..d + 8].copy_from_slice(&self.dropped[i].to_ne_bytes());
            let t = abi::trailer::DROPPED_TOTAL.offset + 8 * i;
            b[t..t + 8].copy_from_slice(&self.dropped_total[i].to_ne_bytes());
        }
        b
    }

    /// Sum of `dropped` over all causes.
    pub fn dropped_sum(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

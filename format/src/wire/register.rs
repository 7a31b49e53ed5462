//! The REGISTER payload as a whole: `struct imp2_config`, and with
//! `IMP2_CONFIG_F_FILTER` the filter extension after it (`struct
//! imp2_filter`, the classic BPF program, the interface indexes), parsed
//! and checked exactly as the module does, and encoded for the recorder.

use super::{Config, ConfigError, abi};
use crate::filter::bpf::{INSN_LEN, Insn, Program};

/// The filter a REGISTER may carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegisterFilter {
    /// Run on each packet from its network header; `None`: every packet.
    pub program: Option<Program>,
    /// Devices to capture on (input at pre-routing, output at local-out);
    /// empty: all.
    pub ifindexes: Vec<u32>,
}

/// A REGISTER payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Register {
    /// The config; its `flags` say whether `filter` is sent.
    pub config: Config,
    /// The filter extension.
    pub filter: Option<RegisterFilter>,
}

impl Register {
    /// A REGISTER with `filter`, flags set to match.
    pub fn new(mut config: Config, filter: Option<RegisterFilter>) -> Register {
        if filter.is_some() {
            config.flags |= abi::CONFIG_F_FILTER;
        } else {
            config.flags &= !abi::CONFIG_F_FILTER;
        }
        Register { config, filter }
    }

    /// Parses and checks a REGISTER payload as the module does: bytes after
    /// the config are ignored without `IMP2_CONFIG_F_FILTER` (ABI 1 as it
    /// always was) and must be exactly the extension with it.
    pub fn parse(payload: &[u8]) -> Result<Register, ConfigError> {
        let config = Config::parse(payload)?;
        let filter = if config.flags & abi::CONFIG_F_FILTER != 0 {
            Some(RegisterFilter::parse(&payload[abi::config::SIZE..])?)
        } else {
            None
        };
        Ok(Register { config, filter })
    }

    /// The payload: the config, then the extension if any.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.config.to_bytes().to_vec();
        if let Some(f) = &self.filter {
            b.extend_from_slice(&f.to_bytes());
        }
        b
    }
}

impl RegisterFilter {
    /// Parses the extension (the bytes after the config).
    pub fn parse(bytes: &[u8]) -> Result<RegisterFilter, ConfigError> {
        let bad = |what: String| ConfigError::Filter(what);
        let header = abi::filter::SIZE;
        if bytes.len() < header {
            return Err(bad(format!(
                "filter header is {} bytes, expected {header}",
                bytes.len()
            )));
        }
        let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let insns = u32_at(abi::filter::INSN_COUNT.offset);
        let ifaces = u32_at(abi::filter::IFINDEX_COUNT.offset);
        if insns > abi::FILTER_INSNS_MAX {
            return Err(bad(format!(
                "{insns} instructions, more than {}",
                abi::FILTER_INSNS_MAX
            )));
        }
        if ifaces > abi::FILTER_IFINDEX_MAX {
            return Err(bad(format!(
                "{ifaces} interfaces, more than {}",
                abi::FILTER_IFINDEX_MAX
            )));
        }
        let code_end = header + insns as usize * INSN_LEN;
        let need = code_end + ifaces as usize * 4;
        if bytes.len() != need {
            return Err(bad(format!(
                "filter is {} bytes, its counts say {need}",
                bytes.len()
            )));
        }
        let program = if insns == 0 {
            None
        } else {
            Some(Program::from_bytes(&bytes[header..code_end]).map_err(|e| bad(e.to_string()))?)
        };
        let ifindexes = bytes[code_end..]
            .chunks_exact(4)
            .map(|c| u32::from_ne_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Ok(RegisterFilter { program, ifindexes })
    }

    /// Encodes the extension.
    pub fn to_bytes(&self) -> Vec<u8> {
        let insns: &[Insn] = self.program.as_ref().map_or(&[], |p| p.insns());
        let mut b = Vec::with_capacity(abi::filter::SIZE + insns.len() * INSN_LEN);
        b.extend_from_slice(&(insns.len() as u32).to_ne_bytes());
        b.extend_from_slice(&(self.ifindexes.len() as u32).to_ne_bytes());
        for i in insns {
            b.extend_from_slice(&i.to_bytes());
        }
        for ifindex in &self.ifindexes {
            b.extend_from_slice(&ifindex.to_ne_bytes());
        }
        b
    }
}

//! `NFULNL_MSG_CONFIG` requests: binding a group, its copy mode, buffer
//! size, flush timeout, queue threshold and flags, built as the kernel
//! expects them and parsed as it checks them.

use super::attrs::{NfGenMsg, nfgen_and_attrs, put_attr};
use super::consts::*;
use super::error::MalformedNflog;
use crate::wire::NlHeader;
use crate::wire::abi::{NLM_F_ACK, NLM_F_REQUEST, NLMSG_HDRLEN};

/// `struct nfulnl_msg_config_mode`: what to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyMode {
    /// `NFULNL_COPY_*`
    pub mode: u8,
    /// Payload bytes to copy at most (0: the kernel's maximum).
    pub range: u32,
}

/// One `NFULNL_MSG_CONFIG` request: a command and/or settings for a group.
/// The kernel applies the command first, then every setting present, all
/// in one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConfigRequest {
    /// `nfgenmsg.nfgen_family`: only meaningful for `PF_BIND`/`PF_UNBIND`.
    pub family: u8,
    /// The group (`nfgenmsg.res_id`).
    pub group: u16,
    /// `NFULA_CFG_CMD`: `CMD_*`.
    pub command: Option<u8>,
    /// `NFULA_CFG_MODE`
    pub mode: Option<CopyMode>,
    /// `NFULA_CFG_NLBUFSIZ`: bytes per kernel buffer.
    pub nlbufsiz: Option<u32>,
    /// `NFULA_CFG_TIMEOUT`: flush timeout, 1/100 s.
    pub timeout: Option<u32>,
    /// `NFULA_CFG_QTHRESH`: messages per buffer at most.
    pub qthresh: Option<u32>,
    /// `NFULA_CFG_FLAGS`: `CFG_F_*`.
    pub flags: Option<u16>,
}

impl ConfigRequest {
    /// `BIND` of `group`.
    pub fn bind(group: u16) -> ConfigRequest {
        ConfigRequest {
            group,
            command: Some(CMD_BIND),
            ..Default::default()
        }
    }

    /// `UNBIND` of `group`: the kernel flushes its pending buffer to us,
    /// then destroys the instance.
    pub fn unbind(group: u16) -> ConfigRequest {
        ConfigRequest {
            group,
            command: Some(CMD_UNBIND),
            ..Default::default()
        }
    }

    /// The complete netlink message (`NLM_F_REQUEST | NLM_F_ACK`).
    pub fn to_message(&self, seq: u32, pid: u32) -> Vec<u8> {
        let mut out = vec![0u8; NLMSG_HDRLEN];
        let nfgen = NfGenMsg {
            family: self.family,
            version: NFNETLINK_V0,
            group: self.group,
        };
        out.extend_from_slice(&nfgen.to_bytes());
        if let Some(cmd) = self.command {
            put_attr(&mut out, NFULA_CFG_CMD, &[cmd]);
        }
        if let Some(m) = self.mode {
            let r = m.range.to_be_bytes();
            put_attr(
                &mut out,
                NFULA_CFG_MODE,
                &[r[0], r[1], r[2], r[3], m.mode, 0],
            );
        }
        for (kind, value) in [
            (NFULA_CFG_NLBUFSIZ, self.nlbufsiz),
            (NFULA_CFG_TIMEOUT, self.timeout),
            (NFULA_CFG_QTHRESH, self.qthresh),
        ] {
            if let Some(v) = value {
                put_attr(&mut out, kind, &v.to_be_bytes());
            }
        }
        if let Some(f) = self.flags {
            put_attr(&mut out, NFULA_CFG_FLAGS, &f.to_be_bytes());
        }
        let len = out.len();
        NlHeader {
            len: len as u32,
            msg_type: MSG_CONFIG,
            flags: NLM_F_REQUEST | NLM_F_ACK,
            seq,
            pid,
        }
        .write(&mut out);
        out
    }

    /// Parses the payload of a config message (after its netlink header),
    /// which starts at byte `base` of the parsed buffer, checking attribute
    /// sizes as the kernel's `nfula_cfg_policy` does.
    pub fn parse(payload: &[u8], base: usize) -> Result<ConfigRequest, MalformedNflog> {
        let (nfgen, attrs) = nfgen_and_attrs(payload, base)?;
        let mut c = ConfigRequest {
            family: nfgen.family,
            group: nfgen.group,
            ..Default::default()
        };
        for attr in attrs {
            let attr = attr?;
            match attr.kind {
                NFULA_CFG_CMD => c.command = Some(attr.fixed::<1>()?[0]),
                NFULA_CFG_MODE => {
                    let [r0, r1, r2, r3, mode, _pad] = attr.fixed::<6>()?;
                    c.mode = Some(CopyMode {
                        mode,
                        range: u32::from_be_bytes([r0, r1, r2, r3]),
                    });
                }
                NFULA_CFG_NLBUFSIZ => c.nlbufsiz = Some(attr.be32()?),
                NFULA_CFG_TIMEOUT => c.timeout = Some(attr.be32()?),
                NFULA_CFG_QTHRESH => c.qthresh = Some(attr.be32()?),
                NFULA_CFG_FLAGS => c.flags = Some(attr.be16()?),
                _ => {}
            }
        }
        Ok(c)
    }
}

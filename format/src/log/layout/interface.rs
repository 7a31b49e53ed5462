//! The INTERFACE payload (FORMAT.md section 4): an interface first seen,
//! or renamed, after recording started.

use super::codec::lossy;
use super::error::FrameError;
use crate::log::Interface;

/// Smallest INTERFACE payload: the ifindex.
pub(crate) const MIN_INTERFACE_PAYLOAD: usize = 4;

pub(crate) fn encode_interface(i: &Interface) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + i.name.len());
    out.extend_from_slice(&i.ifindex.to_le_bytes());
    out.extend_from_slice(i.name.as_bytes());
    out
}

pub(crate) fn decode_interface(payload: &[u8]) -> Result<Interface, FrameError> {
    if payload.len() < MIN_INTERFACE_PAYLOAD {
        return Err(FrameError::InterfaceShort { len: payload.len() });
    }
    Ok(Interface {
        ifindex: u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]),
        name: lossy(&payload[4..]),
    })
}

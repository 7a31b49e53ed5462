//! Setting up a netlink socket the way both sources need it: bound to a
//! port of its own, its receive buffer sized, ENOBUFS suppressed (losses
//! are found exactly, from trailers or sequence numbers, instead).

use netlink_sys::Socket;

use crate::sys::set_rcvbuf;

/// A bound netlink socket and what the kernel granted it.
#[derive(Debug)]
pub struct BoundSocket {
    /// The socket.
    pub socket: Socket,
    /// Our own port id.
    pub port_id: u32,
    /// Receive buffer size the kernel granted, bytes.
    pub rcvbuf: usize,
    /// Whether `SO_RCVBUFFORCE` was refused and `SO_RCVBUF` used instead.
    pub rcvbuf_capped: bool,
}

/// Binds `socket` (named `name` in errors, e.g. "netlink"), sizes its
/// receive buffer to `rcvbuf` bytes and sets `NETLINK_NO_ENOBUFS`.
pub fn bind(mut socket: Socket, name: &str, rcvbuf: usize) -> Result<BoundSocket, String> {
    let addr = socket
        .bind_auto()
        .map_err(|e| format!("cannot bind the {name} socket: {e}"))?;
    let rcvbuf_capped = set_rcvbuf(&socket, rcvbuf)
        .map_err(|e| format!("cannot set the receive buffer to {rcvbuf} bytes: {e}"))?;
    let granted = socket
        .get_rx_buf_sz()
        .map_err(|e| format!("cannot read the receive buffer size: {e}"))?;
    socket
        .set_no_enobufs(true)
        .map_err(|e| format!("cannot set NETLINK_NO_ENOBUFS: {e}"))?;
    Ok(BoundSocket {
        socket,
        port_id: addr.port_number(),
        rcvbuf: granted,
        rcvbuf_capped,
    })
}

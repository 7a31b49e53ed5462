//! Where the sinks' buffers go: straight into a [`Write`], or to a writer
//! thread ([`Handoff`]) so that the `write(2)` calls, about half the time of
//! a conversion to a file (the kernel's copy into the page cache and the
//! file system's bookkeeping), overlap with reading and encoding.

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Capacity a sink's buffer starts with: room for [`FLUSH_AT`] bytes and a
/// large packet beyond it, so that it rarely grows.
pub(super) const BUF_CAPACITY: usize = FLUSH_AT + (64 << 10);

/// A sink hands its buffer over once it holds this much:
/// large enough that a `write(2)` per piece costs little, small enough that
/// the piece is still in the L2 cache when the kernel copies it.
pub(super) const FLUSH_AT: usize = 256 << 10;

/// Buffers in circulation with a writer thread: one being filled, the rest
/// queued for or in `write(2)`.
const BUFFERS: usize = 4;

/// The destination of a sink's full buffers.
pub(crate) trait Output {
    /// Takes the bytes of `buf` and leaves it empty (with its capacity, or
    /// another buffer's).
    fn submit(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()>;
    /// Called once after the last `submit`.
    fn finish(&mut self) -> std::io::Result<()>;
}

impl<W: Write> Output for W {
    fn submit(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        self.write_all(buf)?;
        buf.clear();
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.flush()
    }
}

/// The exporting side of a writer thread: full buffers go to the thread,
/// emptied ones come back, so no buffer is copied or allocated again.
#[derive(Debug)]
pub(crate) struct Handoff {
    full: SyncSender<Vec<u8>>,
    empty: Receiver<Vec<u8>>,
}

/// The writer thread stopped (its write failed): the caller reports the
/// thread's error, not this one.
fn writer_gone() -> std::io::Error {
    std::io::Error::other("the writer thread stopped")
}

impl Output for Handoff {
    fn submit(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        // Blocks while all other buffers are queued: the writer sets the
        // pace, and memory stays at BUFFERS buffers.
        let fresh = self.empty.recv().map_err(|_| writer_gone())?;
        let full = std::mem::replace(buf, fresh);
        self.full.send(full).map_err(|_| writer_gone())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        // The writer flushes once the channel closes (Handoff dropped).
        Ok(())
    }
}

/// Runs `produce` with a [`Handoff`] whose buffers a second thread writes
/// to `out` in order, then flushes `out`. A write error ends the thread;
/// `produce` then fails at its next hand-over, and the write error is
/// what this returns.
pub(crate) fn with_writer_thread<W, T, E>(
    mut out: W,
    produce: impl FnOnce(Handoff) -> Result<T, E>,
) -> Result<T, E>
where
    W: Write + Send,
    E: From<std::io::Error>,
{
    let (full_tx, full_rx) = sync_channel::<Vec<u8>>(BUFFERS);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS - 1 {
        empty_tx
            .send(Vec::with_capacity(BUF_CAPACITY))
            .expect("the channel has room for every buffer");
    }
    std::thread::scope(|s| {
        let writer = std::thread::Builder::new()
            .name("imp2-export-write".into())
            .spawn_scoped(s, move || -> std::io::Result<()> {
                for mut buf in full_rx {
                    out.write_all(&buf)?;
                    buf.clear();
                    // The producer may be gone already (it failed): fine.
                    let _ = empty_tx.send(buf);
                }
                out.flush()
            })?;
        let produced = produce(Handoff {
            full: full_tx,
            empty: empty_rx,
        });
        // `produce` consumed the Handoff: the channel is closed, and the
        // writer ends once it has written what was queued.
        let written = match writer.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match (produced, written) {
            (_, Err(e)) => Err(e.into()),
            (r, Ok(())) => r,
        }
    })
}

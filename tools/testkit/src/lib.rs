//! imp2's test and benchmark kit: what only tests and benchmarks use, kept
//! out of the product crates (`publish = false`).
//!
//! - [`synth`]: deterministic synthetic packets; [`RecordDigest`]: an
//!   order-independent digest of a set of records.
//! - [`harness`]: finding and building the workspace binaries, running them
//!   with time bounds, `imp2-loadgen` until it listens; [`netns`]: two
//!   network namespaces joined by a veth pair; [`tmpfs`]: a small tmpfs;
//!   [`proc`]: a child reaped for its CPU time (the benchmarks').
//! - [`capture`]: walking the packets of pcap/pcapng files; [`sys`]: CPU
//!   time and socket buffers.
//!
//! Its binaries: `imp2-loadgen` (the kernel module's user-space stand-in)
//! and `imp2-flood` (bounded traffic in a test namespace).

pub mod capture;
mod digest;
pub mod harness;
pub mod netns;
pub mod proc;
pub mod synth;
pub mod sys;
pub mod tmpfs;

pub use digest::RecordDigest;
pub use netns::VethPair;
pub use tmpfs::SmallTmpfs;

/// What a test that needs root (or a mount, a namespace) does when it
/// cannot have it: it fails, saying what it needed and why it could not
/// have it. Every such test goes through here, so they all behave alike.
#[track_caller]
pub fn needs_root<T>(what: &str, got: Result<T, String>) -> T {
    got.unwrap_or_else(|e| panic!("this test needs root ({what}): {e}"))
}

//! Where the NFLOG source's CPU per packet goes, from the same rounds as
//! the side-by-side comparison: the hot path without sockets (the
//! `nflog_hotpath` example: walk NFLOG datagrams shaped like the kernel's,
//! encode, checksum and `pwrite` the log) against imp2-record live, which
//! adds the receive (the kernel's copy of each datagram into the io_uring
//! ring) and the process's own overhead; and the bare C reader beside it.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::{M, run_example, stage};

/// The hot path's figures over the rounds, CPU ns per packet.
#[derive(Clone, Debug, Default)]
pub struct HotPath {
    /// The walk alone (the recorder's fast path, `NflogWalker::next_packet`).
    pub walk: M,
    /// Walk + log append, user time.
    pub user: M,
    /// Walk + log append, system time (the `pwrite` into the page cache).
    pub sys: M,
}

impl HotPath {
    /// Runs `nflog_hotpath` once over `packets` packets, writing its log in
    /// `dir`, and adds its figures.
    pub fn measure(&mut self, dir: &Path, packets: u64) -> Result<(), String> {
        let args = [dir.display().to_string(), packets.to_string()];
        let stages = run_example("nflog_hotpath", &args, Duration::from_secs(300))?;
        let walk = stage(&stages, "walk (fast)")?;
        let append = stage(&stages, "walk (fast) + log append")?;
        self.walk.push(walk.cpu);
        self.user.push(append.user);
        self.sys.push(append.sys);
        Ok(())
    }

    /// Walk + append, user + system, per round.
    fn total(&self) -> M {
        M {
            v: self
                .user
                .v
                .iter()
                .zip(&self.sys.v)
                .map(|(u, s)| u + s)
                .collect(),
        }
    }
}

/// The breakdown table: the hot path's stages, imp2-record live (`imp2`,
/// CPU ns per packet over the rounds), what receiving adds (live less the
/// hot path, medians), and the bare C reader live (`reader`).
pub fn render(hot: &HotPath, imp2: &M, reader: &M) -> String {
    let mut o = String::new();
    if hot.walk.v.is_empty() {
        return o;
    }
    let total = hot.total();
    let _ = writeln!(
        o,
        "\n**Where imp2-record's CPU per packet goes** (NFLOG source, default mode; CPU ns per \
         packet, medians over the same rounds):\n\n| part | CPU ns/packet |\n|---|---|"
    );
    let _ = writeln!(
        o,
        "| walk of the NFLOG datagrams (fast path), no sockets | {} |",
        hot.walk.show(1)
    );
    let _ = writeln!(
        o,
        "| walk + encode + CRC32C + `pwrite`, no sockets (`nflog_hotpath` example: user {} + \
         system {}) | {} |",
        hot.user.show(1),
        hot.sys.show(1),
        total.show(1)
    );
    let _ = writeln!(
        o,
        "| imp2-record live (receive included) | {} |",
        imp2.show(1)
    );
    let receive = imp2.med() - total.med();
    if receive.is_finite() {
        let _ = writeln!(
            o,
            "| so receiving (the kernel's copy into the io_uring ring, the loop, start-up \
             not counted) | {receive:.1} |"
        );
    }
    let _ = writeln!(
        o,
        "| bare C reader live (`recv` + pcap writes), the reference | {} |",
        reader.show(1)
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breakdown_subtracts_medians_and_is_empty_without_rounds() {
        assert_eq!(
            render(&HotPath::default(), &M::default(), &M::default()),
            ""
        );
        let m = |v: &[f64]| M { v: v.to_vec() };
        let hot = HotPath {
            walk: m(&[10.0, 12.0]),
            user: m(&[20.0, 22.0]),
            sys: m(&[30.0, 34.0]),
        };
        let text = render(&hot, &m(&[90.0, 90.0]), &m(&[70.0, 68.0]));
        assert!(text.contains("| 53.0 (50.0-56.0, n=2) |"), "{text}");
        assert!(text.contains("start-up not counted) | 37.0 |"), "{text}");
        assert!(
            text.contains("the reference | 69.0 (68.0-70.0, n=2) |"),
            "{text}"
        );
    }
}

//! The packet pool (`--pool N`, the default): N packets synthesized once,
//! cut at the recorder's snaplen, their digest work prepared, then replayed
//! in order, round and round (sequential reads stay ahead of the caches;
//! the synthesized sequence is already random, in flows). Every record
//! still gets its own timestamp, so
//! every record (and its digest term) is unique; only the packet bytes
//! repeat. Replaying costs a copy and a short CRC per record instead of
//! building headers and hashing the whole record, which is what lets one
//! core drive a recorder at tens of millions of records per second.

use imp2_format::{Family, Hook, PacketRecord};
use imp2_testkit::synth::PacketSynth;

use crate::digest::{FastDigest, Prepared};
use crate::stream::Filter;

/// Most bytes a pool holds; the packet count shrinks to fit.
const MAX_POOL_BYTES: usize = 64 << 20;

/// One pooled packet.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    off: u32,
    len: u32,
    orig_len: u32,
    ifindex: u32,
    hook: Hook,
    family: Family,
    protocol: u8,
    /// Whether the recorder's filters capture it.
    pub wanted: bool,
    /// Digest work done once.
    pub prepared: Prepared,
}

impl Entry {
    /// The record of this packet at `tstamp_ns`, with `data` as given.
    pub fn record<'a>(&self, tstamp_ns: u64, data: &'a [u8]) -> PacketRecord<'a> {
        PacketRecord {
            tstamp_ns,
            ifindex: self.ifindex,
            orig_len: self.orig_len,
            hook: self.hook,
            family: self.family,
            protocol: self.protocol,
            data,
        }
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct Pool {
    data: Vec<u8>,
    entries: Vec<Entry>,
    next: u32,
}

impl Pool {
    /// Synthesizes up to `packets` packets from `synth` (fewer if they
    /// would exceed 64 MiB), cut at `snaplen`.
    pub fn new(
        synth: &mut PacketSynth,
        packets: usize,
        snaplen: usize,
        filter: &Filter,
        digest: &mut FastDigest,
    ) -> Pool {
        let each = synth.max_len().min(snaplen).max(1);
        let packets = packets.clamp(1, (MAX_POOL_BYTES / each).max(1));
        let mut buf = vec![0u8; each];
        let mut data = Vec::new();
        let mut entries = Vec::with_capacity(packets);
        for _ in 0..packets {
            let p = synth.next_packet();
            let n = synth.write(&p, &mut buf[..p.len.min(snaplen)]);
            let off = data.len();
            data.extend_from_slice(&buf[..n]);
            entries.push(Entry {
                off: off as u32,
                len: n as u32,
                orig_len: p.len as u32,
                ifindex: p.ifindex,
                hook: p.hook,
                family: p.family,
                protocol: p.protocol,
                wanted: filter.wanted(&p),
                prepared: digest.prepare(&buf[..n]),
            });
        }
        Pool {
            data,
            entries,
            next: 0,
        }
    }

    /// Whether the filters capture any packet of the pool.
    pub fn any_wanted(&self) -> bool {
        self.entries.iter().any(|e| e.wanted)
    }

    /// The next packet to replay.
    #[inline]
    pub fn draw(&mut self) -> u32 {
        let i = self.next;
        self.next += 1;
        if self.next as usize == self.entries.len() {
            self.next = 0;
        }
        i
    }

    /// Entry `i`.
    #[inline]
    pub fn entry(&self, i: u32) -> &Entry {
        &self.entries[i as usize]
    }

    /// The captured bytes of `entry`.
    #[inline]
    pub fn data(&self, entry: &Entry) -> &[u8] {
        &self.data[entry.off as usize..entry.off as usize + entry.len as usize]
    }
}

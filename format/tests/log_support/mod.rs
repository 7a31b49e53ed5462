//! Helpers shared by the `log_*` integration tests. The frame walker here is
//! written from FORMAT.md alone, independently of the crate's reader.
#![allow(dead_code)] // each test file uses a different subset

use imp2_format::log::{
    Footer, Interface, LogEvent, LogHeader, LogReader, Losses, OnDamage, ReadError, Skipped,
    WriteMode, WriterOptions,
};
use imp2_format::{Family, Hook, PacketRecord};

/// Both write modes; the mmap one with small windows so that tests cross
/// many window boundaries.
pub fn modes() -> [WriterOptions; 4] {
    [
        WriterOptions::default(),
        WriterOptions {
            mode: WriteMode::Pwrite,
            chunk_bytes: 8192,
        },
        WriterOptions {
            mode: WriteMode::Mmap,
            chunk_bytes: 64 << 10,
        },
        WriterOptions {
            mode: WriteMode::Direct,
            chunk_bytes: 64 << 10,
        },
    ]
}

pub fn header(interfaces: &[(u32, &str)]) -> LogHeader {
    LogHeader {
        created_ns: 1_700_000_000_000_000_000,
        snaplen: 256,
        source: "imp2 module unit 31".into(),
        hostname: "testhost".into(),
        kernel_release: "6.1.0-test".into(),
        tsresol_digits: 9,
        interfaces: interfaces
            .iter()
            .map(|&(ifindex, name)| Interface {
                ifindex,
                name: name.into(),
            })
            .collect(),
    }
}

/// A record that owns its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub tstamp_ns: u64,
    pub ifindex: u32,
    pub orig_len: u32,
    pub hook: u8,
    pub family: u8,
    pub protocol: u8,
    pub data: Vec<u8>,
}

impl Rec {
    pub fn as_record(&self) -> PacketRecord<'_> {
        PacketRecord {
            tstamp_ns: self.tstamp_ns,
            ifindex: self.ifindex,
            orig_len: self.orig_len,
            hook: Hook(self.hook),
            family: Family(self.family),
            protocol: self.protocol,
            data: &self.data,
        }
    }

    pub fn from_record(r: &PacketRecord<'_>) -> Rec {
        Rec {
            tstamp_ns: r.tstamp_ns,
            ifindex: r.ifindex,
            orig_len: r.orig_len,
            hook: r.hook.0,
            family: r.family.0,
            protocol: r.protocol,
            data: r.data.to_vec(),
        }
    }
}

/// An owned log event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Rec(Rec),
    If(Interface),
    Loss(Losses),
    Foot(Footer),
    Skip(Skipped),
}

impl Ev {
    pub fn from_event(e: &LogEvent<'_>) -> Ev {
        match e {
            LogEvent::Record(r) => Ev::Rec(Rec::from_record(r)),
            LogEvent::Interface(i) => Ev::If(i.clone()),
            LogEvent::Losses(l) => Ev::Loss(*l),
            LogEvent::Footer(f) => Ev::Foot(f.clone()),
            LogEvent::Skipped(s) => Ev::Skip(s.clone()),
        }
    }
}

/// Every event of a log, and the error that ended it (if any). Panics if an
/// event follows an error.
pub fn read_all(r: &LogReader) -> (Vec<Ev>, Option<ReadError>) {
    let mut evs = Vec::new();
    let mut err = None;
    for item in r.events() {
        assert!(err.is_none(), "event after an error");
        match item {
            Ok(e) => evs.push(Ev::from_event(&e)),
            Err(e) => err = Some(e),
        }
    }
    (evs, err)
}

/// [`read_all`] with [`OnDamage::Skip`]: damaged frames come as
/// [`Ev::Skip`], and only a torn tail ends the walk with an error.
pub fn read_all_skipping(r: &LogReader) -> (Vec<Ev>, Option<ReadError>) {
    let mut evs = Vec::new();
    let mut err = None;
    for item in r.events_with(OnDamage::Skip) {
        assert!(err.is_none(), "event after an error");
        match item {
            Ok(e) => evs.push(Ev::from_event(&e)),
            Err(e) => err = Some(e),
        }
    }
    (evs, err)
}

pub fn records_of(evs: &[Ev]) -> Vec<Rec> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Rec(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// A frame as found by [`walk_frames`].
#[derive(Clone, Copy, Debug)]
pub struct FrameInfo {
    pub start: u64,
    pub end: u64,
    pub frame_type: u8,
    /// Record count (RECORDS frames).
    pub count: u32,
}

pub fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

pub fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// Header length and committed length of an intact log.
pub fn lengths(b: &[u8]) -> (u64, u64) {
    (u64::from(u32_at(b, 12)), u64_at(b, 16))
}

/// The frames of an intact log, following FORMAT.md section 4.
pub fn walk_frames(b: &[u8]) -> Vec<FrameInfo> {
    let (header_len, committed) = lengths(b);
    let mut out = Vec::new();
    let mut pos = header_len;
    while pos < committed {
        let p = pos as usize;
        let len = u64::from(u32_at(b, p));
        let frame_type = b[p + 4];
        let count = if frame_type == 1 {
            u32_at(b, p + 12 + 8)
        } else {
            0
        };
        let end = pos + 12 + len;
        out.push(FrameInfo {
            start: pos,
            end,
            frame_type,
            count,
        });
        pos = end;
    }
    assert_eq!(pos, committed, "frames do not end at the committed length");
    out
}

/// Records contained in the frames that end at or before `limit`, given the
/// records in write order.
pub fn records_before(frames: &[FrameInfo], recs: &[Rec], limit: u64) -> Vec<Rec> {
    let n: usize = frames
        .iter()
        .filter(|f| f.end <= limit)
        .map(|f| f.count as usize)
        .sum();
    recs[..n].to_vec()
}

/// Tiny deterministic generator (xorshift64*), so that failures replay.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A realistic mix of records: both hooks and families, a few interfaces,
/// tcp/udp/icmp, snaplen cuts, occasional odd values, times mostly rising
/// with some going backwards.
pub fn sample_records(n: usize, seed: u64) -> Vec<Rec> {
    let mut rng = Rng(seed | 1);
    let mut ts = 1_700_000_000_000_000_000u64;
    (0..n)
        .map(|i| {
            ts = if rng.below(10) == 0 {
                ts - rng.below(5000)
            } else {
                ts + rng.below(3000)
            };
            let orig_len = match rng.below(4) {
                0 => 40 + rng.below(60) as u32,
                1 => 1500,
                2 => 0,
                _ => rng.below(300) as u32,
            };
            let cap = if rng.below(3) == 0 {
                orig_len.min(rng.below(200) as u32)
            } else {
                orig_len.min(256)
            };
            let (hook, family) = match rng.below(20) {
                0 => (1, 2),  // unknown hook
                1 => (3, 99), // unknown family
                _ => (
                    [0, 3][rng.below(2) as usize],
                    [2, 10][rng.below(2) as usize],
                ),
            };
            Rec {
                tstamp_ns: ts,
                ifindex: [1, 2, 2, 2, 7, 100_000][rng.below(6) as usize],
                orig_len,
                hook,
                family,
                protocol: [6, 6, 6, 17, 1, 255][rng.below(6) as usize],
                data: (0..cap).map(|j| (i as u32 ^ j) as u8).collect(),
            }
        })
        .collect()
}

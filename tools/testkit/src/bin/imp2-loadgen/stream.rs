//! The module's data path, in user space: synthesize packets, filter them
//! with the recorder's config, batch them per simulated CPU, send each batch
//! without blocking, and account for every record in the trailers exactly
//! as the module does.

use std::io;
use std::time::{Duration, Instant};

use imp2_format::wire::abi;
use imp2_format::wire::{BatchBuilder, BatchFull, BatchTrailer, Config, NlHeader};
use imp2_format::{Family, Hook, PacketRecord};
use imp2_testkit::RecordDigest;
use imp2_testkit::synth::{PacketSynth, SynthOptions, SynthPacket};

use crate::digest::FastDigest;
use crate::hostile::Hostile;
use crate::link::Channel;
use crate::pool::Pool;

/// Bytes of a batch skb the module cannot fill: `SKB_WITH_OVERHEAD()`
/// takes the `struct skb_shared_info` (320 bytes on x86_64) and alignment
/// out of the allocation; 512 is a round, slightly pessimistic stand-in, so
/// a batch datagram is `batch_bytes - 512` bytes at most.
pub const SKB_OVERHEAD: usize = 512;

/// How often (in datagrams) the stream looks for control messages
/// (UNREGISTER, another REGISTER): one non-blocking recv per this many sends.
const CONTROL_EVERY: u64 = 32;

/// Longest single sleep of the rate pacer, so control messages are seen.
const MAX_NAP: Duration = Duration::from_millis(20);

/// Per simulated CPU: its own sequence space and counters, like the
/// module's per-CPU batch state.
#[derive(Clone, Copy, Debug, Default)]
struct CpuState {
    /// Trailers this CPU handed to netlink successfully (last seq sent).
    seq: u64,
    /// Records in those batches.
    records_total: u64,
    /// Drops not yet reported in a delivered trailer, by cause.
    pending: [u64; abi::DROP_CAUSES],
    /// Running totals of drops, by cause (reported or not).
    dropped_total: [u64; abi::DROP_CAUSES],
}

/// What happened, for the report.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Records generated that passed the filters (hostile ones excluded).
    pub generated: u64,
    /// Packets the recorder's filters excluded (never sent or counted).
    pub filtered: u64,
    /// Records in successfully sent datagrams, hostile ones included.
    pub sent: u64,
    /// Records dropped (all causes).
    pub dropped: u64,
    /// Dropped records by `enum imp2_drop_cause`.
    pub dropped_by_cause: [u64; abi::DROP_CAUSES],
    /// Batches handed to netlink successfully (FINAL ones included).
    pub batches_sent: u64,
    /// Batches that failed to send (their records are dropped).
    pub batches_dropped: u64,
    /// Hostile datagrams sent successfully: malformed items to expect.
    pub hostile_datagrams: u64,
    /// Valid records inside those.
    pub hostile_records: u64,
    /// Hostile datagrams that could not be sent (not counted above).
    pub hostile_unsent: u64,
    /// Dropped records whose count no delivered trailer reports (a FINAL
    /// batch could not be sent).
    pub unreported_drops: u64,
    /// Digest of every record successfully sent, hostile ones included.
    pub digest: RecordDigest,
}

/// Why streaming stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// All records were generated.
    Done,
    /// The recorder sent UNREGISTER (to be acknowledged after the FINALs).
    Unregistered(NlHeader),
    /// The recorder's socket is gone (ECONNREFUSED).
    Refused,
}

/// Stream parameters besides the recorder's config.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// Records to generate.
    pub count: u64,
    /// Records per second, 0 for as fast as possible.
    pub rate: u64,
    /// Simulated CPUs (sequence spaces).
    pub cpus: u32,
    /// One record per datagram.
    pub per_record: bool,
    /// One hostile datagram after every this many batches (0: never).
    pub hostile_every: u64,
    /// How long the FINAL batches may wait for room.
    pub final_timeout: Duration,
    /// Whether the filters let any synthesized packet through; if not, the
    /// count is drawn and filtered at once.
    pub records_possible: bool,
    /// Packets in the replay pool; 0 synthesizes every packet afresh.
    pub pool: usize,
}

/// The next packet to batch: freshly synthesized, or a pool entry.
#[derive(Clone, Copy, Debug)]
enum Item {
    Synth(SynthPacket),
    Pool(u32),
}

/// The data path; see the module documentation.
#[derive(Debug)]
pub struct Stream {
    opts: StreamOptions,
    config: Config,
    filter: Filter,
    synth: PacketSynth,
    pool: Option<Pool>,
    hostile: Hostile,
    builder: BatchBuilder,
    snaplen: usize,
    cpus: Vec<CpuState>,
    /// CPU the batch being built belongs to.
    cpu: usize,
    /// Last timestamp given out.
    last_ts: u64,
    /// A packet that did not fit the previous batch.
    carry: Option<Item>,
    /// Digest of the records in the batch being built.
    batch_digest: RecordDigest,
    fast_digest: FastDigest,
    /// When the batch being built got its first record.
    batch_started: Option<Instant>,
    /// Datagrams sent since the last control check.
    since_control: u64,
    /// Normal batches since the last hostile datagram.
    since_hostile: u64,
    /// Counters for the report.
    pub stats: Stats,
}

/// CLOCK_REALTIME in nanoseconds since the epoch.
pub fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The recorder's capture filters, as the module applies them (hook,
/// family and protocol, before copying anything).
#[derive(Clone, Copy, Debug)]
pub struct Filter {
    hooks: u32,
    families: u32,
    /// `None`: every protocol.
    protocols: Option<[u8; 32]>,
}

impl Filter {
    /// The filters of `config`.
    pub fn new(config: &Config) -> Filter {
        Filter {
            hooks: config.hooks,
            families: config.families,
            protocols: config
                .protocols
                .iter()
                .any(|&b| b != 0)
                .then_some(config.protocols),
        }
    }

    /// Whether a packet of `family` and `protocol` seen at `hook` is
    /// captured.
    #[inline]
    pub fn passes(&self, family: Family, protocol: u8, hook: Hook) -> bool {
        let family = if family == Family::IPV6 {
            abi::FAMILY_F_IPV6
        } else {
            abi::FAMILY_F_IPV4
        };
        self.families & family != 0
            && hook.0 < 32
            && self.hooks & (1 << hook.0) != 0
            && self
                .protocols
                .is_none_or(|bits| bits[usize::from(protocol / 8)] & (1 << (protocol % 8)) != 0)
    }

    /// Whether `p` is captured.
    #[inline]
    pub fn wanted(&self, p: &SynthPacket) -> bool {
        self.passes(p.family, p.protocol, p.hook)
    }

    /// Whether any packet `options` describe can pass.
    pub fn passes_any(&self, options: &SynthOptions) -> bool {
        options.families.iter().any(|&family| {
            options.transports.iter().any(|t| {
                options
                    .hooks
                    .iter()
                    .any(|&hook| self.passes(family, t.protocol(family), hook))
            })
        })
    }
}

impl Stream {
    /// A stream of `synth`'s packets for a recorder that registered
    /// `config`; `hostile` makes the hostile datagrams' valid records.
    pub fn new(
        mut opts: StreamOptions,
        config: Config,
        mut synth: PacketSynth,
        hostile: Hostile,
        port_id: u32,
    ) -> Stream {
        let filter = Filter::new(&config);
        let mut fast_digest = FastDigest::new();
        let pool = (opts.pool > 0 && opts.records_possible).then(|| {
            Pool::new(
                &mut synth,
                opts.pool,
                config.snaplen as usize,
                &filter,
                &mut fast_digest,
            )
        });
        if pool.as_ref().is_some_and(|p| !p.any_wanted()) {
            // Replaying would draw filtered packets forever.
            opts.records_possible = false;
        }
        let capacity = (config.batch_bytes as usize).saturating_sub(SKB_OVERHEAD);
        let max_records = if opts.per_record {
            1
        } else {
            config.batch_records
        };
        let snaplen = config.snaplen as usize;
        let cpus = vec![CpuState::default(); opts.cpus.max(1) as usize];
        Stream {
            opts,
            config,
            filter,
            synth,
            pool,
            hostile,
            builder: BatchBuilder::new(capacity, max_records, port_id),
            snaplen,
            cpus,
            cpu: 0,
            last_ts: 0,
            carry: None,
            batch_digest: RecordDigest::default(),
            fast_digest,
            batch_started: None,
            since_control: 0,
            since_hostile: 0,
            stats: Stats::default(),
        }
    }

    /// Counts `n` records of the current CPU as dropped for `cause`.
    fn drop_records(&mut self, n: u64, cause: usize) {
        let cpu = &mut self.cpus[self.cpu];
        cpu.pending[cause] += n;
        cpu.dropped_total[cause] += n;
        self.stats.dropped += n;
        self.stats.dropped_by_cause[cause] += n;
    }

    /// Adds records to the current batch until it is full or `target`
    /// records have been generated. Returns whether the batch is full.
    fn fill(&mut self, target: u64) -> bool {
        // One clock read per call: the batch start, then +1 ns per record
        // (unique and increasing over the whole stream).
        let ts = realtime_ns().max(self.last_ts + 1);
        self.fill_from(target, ts)
    }

    /// The body of [`Stream::fill`], from timestamp `ts` on.
    #[inline(always)]
    fn fill_from(&mut self, target: u64, mut ts: u64) -> bool {
        let mut full = false;
        while self.stats.generated < target {
            let item = match self.carry.take() {
                Some(item) => item,
                None => match &mut self.pool {
                    Some(pool) => {
                        let i = pool.draw();
                        if !pool.entry(i).wanted {
                            self.stats.filtered += 1;
                            continue;
                        }
                        Item::Pool(i)
                    }
                    None => {
                        let p = self.synth.next_packet();
                        if !self.filter.wanted(&p) {
                            self.stats.filtered += 1;
                            continue;
                        }
                        Item::Synth(p)
                    }
                },
            };
            let was_empty = self.builder.is_empty();
            let pushed = match item {
                Item::Synth(p) => {
                    // Synthesized straight into the batch, digested hot.
                    let n = p.len.min(self.snaplen);
                    let meta = p.record(ts, &[]);
                    let synth = &self.synth;
                    self.builder
                        .push_with(&meta, n, |data| {
                            synth.write(&p, data);
                        })
                        .map(|data| {
                            let record = PacketRecord { data, ..meta };
                            self.fast_digest.add(&mut self.batch_digest, &record);
                        })
                }
                Item::Pool(i) => {
                    let pool = self.pool.as_ref().expect("pool item without a pool");
                    let entry = pool.entry(i);
                    let meta = entry.record(ts, &[]);
                    let src = pool.data(entry);
                    self.builder
                        .push_with(&meta, src.len(), |data| data.copy_from_slice(src))
                        .map(|_| {
                            self.fast_digest.add_prepared(
                                &mut self.batch_digest,
                                &meta,
                                &entry.prepared,
                            )
                        })
                }
            };
            match pushed {
                Ok(()) => {
                    if self.batch_started.is_none() {
                        self.batch_started = Some(Instant::now());
                    }
                }
                Err(BatchFull) if !was_empty => {
                    self.carry = Some(item);
                    full = true;
                    break;
                }
                Err(BatchFull) => {
                    // Bigger than an empty batch: the module cannot build
                    // the record either.
                    self.drop_records(1, abi::DROP_OTHER);
                }
            }
            self.last_ts = ts;
            ts += 1;
            self.stats.generated += 1;
            if self.builder.is_full() {
                full = true;
                break;
            }
        }
        full
    }

    /// Closes the current batch with a trailer carrying `flags` and hands
    /// it to `channel`: without blocking, or until `deadline` if given.
    /// Returns `Err` only for ECONNREFUSED.
    fn send_batch(
        &mut self,
        channel: &mut impl Channel,
        flags: u32,
        deadline: Option<Instant>,
    ) -> Result<bool, ()> {
        let records = self.builder.records();
        let n = u64::from(records);
        let state = self.cpus[self.cpu];
        let trailer = BatchTrailer {
            status: 0,
            cpu: self.cpu as u32,
            seq: state.seq + 1,
            records,
            flags,
            records_total: state.records_total + n,
            dropped: state.pending,
            dropped_total: state.dropped_total,
        };
        let datagram = self.builder.finish(&trailer);
        let result = match deadline {
            None => channel.send(datagram),
            Some(deadline) => channel.send_until(datagram, deadline),
        };
        self.builder.clear();
        self.batch_started = None;
        let digest = std::mem::take(&mut self.batch_digest);
        self.since_control += 1;
        let outcome = match result {
            Ok(()) => {
                let cpu = &mut self.cpus[self.cpu];
                cpu.seq += 1;
                cpu.records_total += n;
                cpu.pending = [0; abi::DROP_CAUSES];
                self.stats.sent += n;
                self.stats.batches_sent += 1;
                self.stats.digest.records += digest.records;
                self.stats.digest.sum = self.stats.digest.sum.wrapping_add(digest.sum);
                Ok(true)
            }
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(0);
                let cause = if errno == libc::EAGAIN {
                    abi::DROP_RCVBUF
                } else {
                    abi::DROP_SEND
                };
                self.drop_records(n, cause);
                self.stats.batches_dropped += 1;
                if errno == libc::ECONNREFUSED {
                    Err(())
                } else {
                    Ok(false)
                }
            }
        };
        self.cpu = (self.cpu + 1) % self.cpus.len();
        outcome
    }

    /// Sends one hostile datagram (outside the sequence accounting).
    fn send_hostile(&mut self, channel: &mut impl Channel) -> Result<(), ()> {
        let mut ts = realtime_ns().max(self.last_ts + 1);
        let snaplen = self.snaplen;
        let filter = self.filter;
        let (datagram, digest) = self.hostile.build(&filter, snaplen, &mut ts);
        self.last_ts = ts - 1;
        self.since_control += 1;
        match channel.send(datagram) {
            Ok(()) => {
                self.stats.hostile_datagrams += 1;
                self.stats.hostile_records += digest.records;
                self.stats.sent += digest.records;
                self.stats.digest.records += digest.records;
                self.stats.digest.sum = self.stats.digest.sum.wrapping_add(digest.sum);
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => Err(()),
            Err(_) => {
                self.stats.hostile_unsent += 1;
                Ok(())
            }
        }
    }

    /// After a normal batch: hostile datagram and control check when due.
    fn after_batch(&mut self, channel: &mut impl Channel) -> io::Result<Option<Stop>> {
        if self.opts.hostile_every > 0 {
            self.since_hostile += 1;
            if self.since_hostile >= self.opts.hostile_every {
                self.since_hostile = 0;
                if self.send_hostile(channel).is_err() {
                    return Ok(Some(Stop::Refused));
                }
            }
        }
        if self.since_control >= CONTROL_EVERY {
            self.since_control = 0;
            if let Some(h) = channel.poll_control()? {
                return Ok(Some(Stop::Unregistered(h)));
            }
        }
        Ok(None)
    }

    /// Expected records per batch, to pace wake-ups.
    fn records_per_batch(&self) -> u64 {
        if self.opts.per_record {
            return 1;
        }
        let capacity = (self.config.batch_bytes as usize).saturating_sub(SKB_OVERHEAD);
        let each = abi::nlmsg_align(
            abi::NLMSG_HDRLEN + abi::record::SIZE + self.synth.max_len().min(self.snaplen),
        );
        let by_bytes = capacity.saturating_sub(abi::NLMSG_HDRLEN + abi::trailer::SIZE) / each;
        (by_bytes as u64)
            .min(u64::from(self.config.batch_records))
            .max(1)
    }

    /// Generates and sends until `count` records, an UNREGISTER, or the
    /// recorder's disappearance. The last partial batch stays pending for
    /// [`Stream::finish`].
    pub fn run(&mut self, channel: &mut impl Channel) -> io::Result<Stop> {
        let count = self.opts.count;
        let rate = self.opts.rate;
        let start = Instant::now();
        let flush = Duration::from_micros(u64::from(self.config.flush_interval_us));
        let per_batch = self.records_per_batch();
        if !self.opts.records_possible {
            self.stats.filtered = count;
            return Ok(Stop::Done);
        }
        while self.stats.generated < count {
            let target = if rate == 0 {
                count
            } else {
                let due = (start.elapsed().as_nanos() * u128::from(rate) / 1_000_000_000) as u64;
                due.min(count)
            };
            let full = self.fill(target);
            if full {
                if self.send_batch(channel, abi::TRAILER_F_FULL, None).is_err() {
                    return Ok(Stop::Refused);
                }
                if let Some(stop) = self.after_batch(channel)? {
                    return Ok(stop);
                }
                continue;
            }
            if self.stats.generated >= count {
                break;
            }
            // Paced, and the batch is not full yet.
            let now = Instant::now();
            if let Some(started) = self.batch_started {
                if now >= started + flush {
                    if self
                        .send_batch(channel, abi::TRAILER_F_TIMER, None)
                        .is_err()
                    {
                        return Ok(Stop::Refused);
                    }
                    if let Some(stop) = self.after_batch(channel)? {
                        return Ok(stop);
                    }
                    continue;
                }
            }
            // Sleep until the batch should be full or its flush is due.
            let want = (self.stats.generated + per_batch - u64::from(self.builder.records()))
                .min(count)
                .max(self.stats.generated + 1);
            let full_at = start
                + Duration::from_nanos(
                    (u128::from(want) * 1_000_000_000 / u128::from(rate.max(1))) as u64,
                );
            let mut wake = full_at;
            if let Some(started) = self.batch_started {
                wake = wake.min(started + flush);
            }
            let nap = wake.saturating_duration_since(now).min(MAX_NAP);
            if !nap.is_zero() {
                if let Some(h) = channel.wait_control(nap)? {
                    return Ok(Stop::Unregistered(h));
                }
            }
        }
        Ok(Stop::Done)
    }

    /// Sends one FINAL batch per simulated CPU, the pending records in the
    /// current CPU's, each carrying that CPU's unreported drops; sends wait
    /// for room (up to the final timeout). Returns whether all went out.
    pub fn finish(&mut self, channel: &mut impl Channel) -> bool {
        let deadline = Instant::now() + self.opts.final_timeout;
        let mut all = true;
        for _ in 0..self.cpus.len() {
            let cpu = self.cpu;
            match self.send_batch(channel, abi::TRAILER_F_FINAL, Some(deadline)) {
                Ok(true) => {}
                Ok(false) | Err(()) => {
                    all = false;
                    let lost: u64 = self.cpus[cpu].pending.iter().sum();
                    self.stats.unreported_drops += lost;
                }
            }
        }
        all
    }

    /// Drops the pending batch (the recorder is gone): its records count as
    /// dropped (send error), unreported.
    pub fn abandon(&mut self) {
        let n = u64::from(self.builder.records());
        self.drop_records(n, abi::DROP_SEND);
        self.builder.clear();
        self.batch_digest = RecordDigest::default();
        self.stats.unreported_drops = self
            .cpus
            .iter()
            .map(|c| c.pending.iter().sum::<u64>())
            .sum();
    }
}

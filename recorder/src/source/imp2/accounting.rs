//! Exact loss accounting from batch trailers.
//!
//! The module numbers batches per CPU and keeps running totals per CPU of
//! records handed to netlink and records dropped by cause. Comparing each
//! trailer with the previous one from the same CPU tells exactly what was
//! lost in between, even when whole batches (trailer included) never arrive:
//!
//! - kernel drops: the growth of `dropped_total`, by cause;
//! - records lost between kernel and recorder (a truncated or vanished
//!   batch): `T.records_total - P.records_total - T.records`.
//!
//! A batch that arrives after a later one from the same CPU was already
//! counted as lost when the later one revealed the gap. The caller discards
//! it (see [`TrailerVerdict::Late`]) so that recorded + lost stays exact.

use std::collections::HashMap;

use imp2_format::log::Losses;
use imp2_format::wire::BatchTrailer;
use imp2_format::wire::abi::DROP_CAUSES;

/// What the last trailer of one CPU said: its batch number and totals.
#[derive(Clone, Copy, Debug, Default)]
struct LastTrailer {
    seq: u64,
    records_total: u64,
    dropped_total: [u64; DROP_CAUSES],
}

/// What a trailer means for the batch it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrailerVerdict {
    /// In order: keep the batch; these are the losses it reveals.
    InOrder(Losses),
    /// Older than a batch already seen from its CPU: its records were
    /// counted as lost then, so the batch must be discarded.
    Late,
}

/// Per-CPU trailer state of one registration.
#[derive(Debug, Default)]
pub struct TrailerAccounting {
    cpus: HashMap<u32, LastTrailer>,
    /// Trailers whose running totals went backwards (a confused peer);
    /// their losses cannot be known and are not invented.
    pub inconsistent: u64,
}

impl TrailerAccounting {
    /// Accounts for one trailer.
    pub fn on_trailer(&mut self, t: &BatchTrailer) -> TrailerVerdict {
        let p = self.cpus.entry(t.cpu).or_default();
        if t.seq <= p.seq {
            return TrailerVerdict::Late;
        }
        let mut losses = Losses {
            gap_batches: t.seq - p.seq - 1,
            ..Losses::default()
        };
        let expected_total = p.records_total.saturating_add(u64::from(t.records));
        match t.records_total.checked_sub(expected_total) {
            Some(gap) => losses.gap_records = gap,
            None => self.inconsistent += 1,
        }
        for (cause, (now, before)) in t.dropped_total.iter().zip(p.dropped_total).enumerate() {
            match now.checked_sub(before) {
                Some(delta) => losses.kernel[cause] = delta,
                None => self.inconsistent += 1,
            }
        }
        *p = LastTrailer {
            seq: t.seq,
            records_total: t.records_total,
            dropped_total: t.dropped_total,
        };
        TrailerVerdict::InOrder(losses)
    }

    /// Whether a batch ending with `t` would be [`TrailerVerdict::Late`],
    /// without accounting for it.
    pub fn is_late(&self, t: &BatchTrailer) -> bool {
        self.cpus.get(&t.cpu).is_some_and(|p| t.seq <= p.seq)
    }

    /// CPUs seen so far.
    pub fn cpus(&self) -> usize {
        self.cpus.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer(
        cpu: u32,
        seq: u64,
        records: u32,
        total: u64,
        dropped_total: [u64; 4],
    ) -> BatchTrailer {
        BatchTrailer {
            cpu,
            seq,
            records,
            records_total: total,
            dropped_total,
            ..Default::default()
        }
    }

    fn in_order(v: TrailerVerdict) -> Losses {
        match v {
            TrailerVerdict::InOrder(l) => l,
            TrailerVerdict::Late => panic!("unexpected late verdict"),
        }
    }

    #[test]
    fn consecutive_batches_lose_nothing() {
        let mut a = TrailerAccounting::default();
        assert!(in_order(a.on_trailer(&trailer(0, 1, 10, 10, [0; 4]))).is_zero());
        assert!(in_order(a.on_trailer(&trailer(0, 2, 5, 15, [0; 4]))).is_zero());
        // Another CPU has its own sequence space.
        assert!(in_order(a.on_trailer(&trailer(1, 1, 7, 7, [0; 4]))).is_zero());
        assert_eq!(a.cpus(), 2);
    }

    #[test]
    fn vanished_batches_are_counted_exactly() {
        let mut a = TrailerAccounting::default();
        in_order(a.on_trailer(&trailer(0, 1, 10, 10, [0; 4])));
        // Batches 2 and 3 (12 + 8 records) never arrived.
        let l = in_order(a.on_trailer(&trailer(0, 4, 5, 35, [0; 4])));
        assert_eq!((l.gap_batches, l.gap_records), (2, 20));
        // A gap before the first batch seen counts too.
        let l = in_order(a.on_trailer(&trailer(3, 2, 1, 4, [0; 4])));
        assert_eq!((l.gap_batches, l.gap_records), (1, 3));
    }

    #[test]
    fn kernel_drops_come_from_running_totals() {
        let mut a = TrailerAccounting::default();
        let l = in_order(a.on_trailer(&trailer(0, 1, 1, 1, [0, 4, 0, 0])));
        assert_eq!(l.kernel, [0, 4, 0, 0]);
        // The trailer between was lost: totals still give the exact drops.
        let l = in_order(a.on_trailer(&trailer(0, 3, 1, 3, [1, 10, 0, 2])));
        assert_eq!(l.kernel, [1, 6, 0, 2]);
        assert_eq!((l.gap_batches, l.gap_records), (1, 1));
    }

    #[test]
    fn late_batches_are_flagged_and_inconsistency_counted() {
        let mut a = TrailerAccounting::default();
        in_order(a.on_trailer(&trailer(0, 2, 1, 5, [0; 4])));
        assert!(a.is_late(&trailer(0, 1, 4, 4, [0; 4])));
        assert!(!a.is_late(&trailer(0, 3, 4, 9, [0; 4])));
        assert!(!a.is_late(&trailer(1, 1, 4, 9, [0; 4])));
        assert_eq!(
            a.on_trailer(&trailer(0, 1, 4, 4, [0; 4])),
            TrailerVerdict::Late
        );
        assert_eq!(
            a.on_trailer(&trailer(0, 2, 1, 5, [0; 4])),
            TrailerVerdict::Late
        );
        // Totals that go backwards are counted, not turned into losses.
        let l = in_order(a.on_trailer(&trailer(0, 3, 9, 6, [0; 4])));
        assert_eq!(l.gap_records, 0);
        assert_eq!(a.inconsistent, 1);
    }
}

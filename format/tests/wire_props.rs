//! Property tests: emit -> walk round trips, and the walker never panics and
//! never yields out-of-range data on arbitrary or mutated bytes.

use imp2_format::wire::{BatchBuilder, BatchMessage, BatchTrailer, BatchWalker, Config, abi};
use imp2_format::{Family, Hook, PacketRecord};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct OwnedRecord {
    tstamp_ns: u64,
    ifindex: u32,
    extra: u32,
    hook: u8,
    family: u8,
    protocol: u8,
    data: Vec<u8>,
}

impl OwnedRecord {
    fn view(&self) -> PacketRecord<'_> {
        PacketRecord {
            tstamp_ns: self.tstamp_ns,
            ifindex: self.ifindex,
            orig_len: self.data.len() as u32 + self.extra,
            hook: Hook(self.hook),
            family: Family(self.family),
            protocol: self.protocol,
            data: &self.data,
        }
    }
}

fn owned_record() -> impl Strategy<Value = OwnedRecord> {
    (
        any::<u64>(),
        any::<u32>(),
        0u32..100_000,
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(
            |(tstamp_ns, ifindex, extra, hook, family, protocol, data)| OwnedRecord {
                tstamp_ns,
                ifindex,
                extra,
                hook,
                family,
                protocol,
                data,
            },
        )
}

fn trailer() -> impl Strategy<Value = BatchTrailer> {
    (
        any::<u32>(),
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
        any::<[u64; 4]>(),
        any::<[u64; 4]>(),
    )
        .prop_map(
            |(cpu, seq, flags, records_total, dropped, dropped_total)| BatchTrailer {
                status: 0,
                cpu,
                seq,
                records: 0,
                flags,
                records_total,
                dropped,
                dropped_total,
            },
        )
}

proptest! {
    #[test]
    fn batch_round_trip(records in proptest::collection::vec(owned_record(), 0..40), t in trailer()) {
        let mut builder = BatchBuilder::new(1 << 20, 1000, 0);
        for r in &records {
            builder.push(&r.view()).unwrap();
        }
        let batch = builder.finish(&t).to_vec();
        let items: Vec<_> = BatchWalker::new(&batch).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(items.len(), records.len() + 1);
        for (item, r) in items.iter().zip(&records) {
            prop_assert_eq!(item.message, BatchMessage::Record(r.view()));
            prop_assert_eq!(item.offset % abi::NLMSG_ALIGNTO, 0);
        }
        let expected = BatchTrailer { records: records.len() as u32, ..t };
        prop_assert_eq!(items.last().unwrap().message, BatchMessage::Done(expected));
    }

    #[test]
    fn walker_survives_arbitrary_bytes(buf in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check_walk(&buf)?;
    }

    #[test]
    fn walker_survives_mutated_batches(
        records in proptest::collection::vec(owned_record(), 1..10),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let mut builder = BatchBuilder::new(1 << 20, 1000, 0);
        for r in &records {
            builder.push(&r.view()).unwrap();
        }
        let mut batch = builder.finish(&BatchTrailer::default()).to_vec();
        for (at, value) in flips {
            let at = at % batch.len();
            batch[at] ^= value | 1;
        }
        batch.truncate(cut % (batch.len() + 1));
        check_walk(&batch)?;
    }

    #[test]
    fn config_round_trip(snaplen in 1u32..=abi::SNAPLEN_MAX, hooks in 1u32..=3, families in 1u32..=3,
                         batch_bytes in abi::BATCH_BYTES_MIN..=abi::BATCH_BYTES_MAX,
                         batch_records in 1u32..=abi::BATCH_RECORDS_MAX,
                         flush in abi::FLUSH_INTERVAL_US_MIN..=abi::FLUSH_INTERVAL_US_MAX,
                         protos in proptest::collection::vec(any::<u8>(), 0..5)) {
        let hooks = [0, abi::HOOK_F_PRE_ROUTING, abi::HOOK_F_LOCAL_OUT, abi::HOOK_F_ALL][hooks as usize];
        let mut config = Config { snaplen, hooks, families, batch_bytes, batch_records,
                                  flush_interval_us: flush, ..Config::default() };
        for p in &protos {
            config.allow_protocol(*p);
        }
        prop_assert_eq!(Config::parse(&config.to_bytes()), Ok(config));
        for p in &protos {
            prop_assert!(config.captures_protocol(*p));
        }
    }
}

/// Walks `buf` and checks every yielded item lies inside it, offsets
/// increase, and nothing follows a framing error.
fn check_walk(buf: &[u8]) -> Result<(), TestCaseError> {
    let mut last = None;
    let mut stopped = false;
    for item in BatchWalker::new(buf) {
        prop_assert!(!stopped, "item after a framing error");
        let offset = match item {
            Ok(i) => {
                prop_assert!(i.offset + i.header.len as usize <= buf.len());
                if let BatchMessage::Record(r) = i.message {
                    prop_assert!(r.data.len() as u64 <= u64::from(r.orig_len));
                    prop_assert!(i.offset + 16 + 24 + r.data.len() <= buf.len());
                }
                i.offset
            }
            Err(e) => {
                stopped = !e.reason.is_recoverable();
                e.offset
            }
        };
        prop_assert!(offset < buf.len());
        if let Some(prev) = last {
            prop_assert!(offset > prev);
        }
        last = Some(offset);
    }
    Ok(())
}

#[test]
fn config_bounds_are_enforced() {
    use imp2_format::wire::ConfigError;
    let ok = Config::default();
    assert_eq!(Config::parse(&ok.to_bytes()), Ok(ok));
    assert_eq!(
        Config::parse(&ok.to_bytes()[..63]),
        Err(ConfigError::Short(63))
    );
    let bad = |c: Config| Config::parse(&c.to_bytes()).unwrap_err();
    assert_eq!(
        bad(Config {
            abi_version: 2,
            ..ok
        }),
        ConfigError::Version(2)
    );
    assert_eq!(
        bad(Config {
            abi_version: 2,
            ..ok
        })
        .errno(),
        libc::EPROTO
    );
    for c in [
        Config { snaplen: 0, ..ok },
        Config {
            snaplen: abi::SNAPLEN_MAX + 1,
            ..ok
        },
        Config { hooks: 0, ..ok },
        Config {
            hooks: 1 << 1,
            ..ok
        },
        Config { families: 4, ..ok },
        Config {
            batch_bytes: abi::BATCH_BYTES_MIN - 1,
            ..ok
        },
        Config {
            batch_bytes: abi::BATCH_BYTES_MAX + 1,
            ..ok
        },
        Config {
            batch_records: 0,
            ..ok
        },
        Config {
            flush_interval_us: 99,
            ..ok
        },
        // Bit 0 announces a filter (wire::Register); the others are unknown.
        Config {
            flags: 1 << 1,
            ..ok
        },
    ] {
        assert_eq!(bad(c).errno(), libc::EINVAL, "{c:?}");
    }
}

//! Which records a reader keeps: a filter expression, interfaces, hooks, a
//! time range and a count, combined by AND (`imp2-convert` and `imp2-info`
//! with an expression, `-i`, `--hook`, `--from`/`--to`, `-c`).

use std::collections::HashMap;

use super::compile::{Filter, FilterLink};
use crate::export::{SLL2_HEADER_LEN, sll2_header};
use crate::log::Interface;
use crate::record::{Hook, PacketRecord};

/// What to keep. The default keeps everything.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// A compiled tcpdump expression, run on the record as its link type
    /// shows it ([`FilterLink`]) with its wire length.
    pub filter: Option<Filter>,
    /// Interface names; a record matches when the name its ifindex had at
    /// that point of the log is one of them (`if<N>` for an ifindex the log
    /// never named).
    pub interfaces: Vec<String>,
    /// Capture points.
    pub hooks: Vec<Hook>,
    /// Earliest capture time kept, ns since the epoch (inclusive).
    pub from_ns: Option<u64>,
    /// Latest capture time kept, ns since the epoch (exclusive).
    pub to_ns: Option<u64>,
    /// Stop after this many matching records.
    pub count: Option<u64>,
}

impl Selection {
    /// Whether it keeps every record (no work to do per record).
    pub fn keeps_all(&self) -> bool {
        self.filter.is_none()
            && self.interfaces.is_empty()
            && self.hooks.is_empty()
            && self.from_ns.is_none()
            && self.to_ns.is_none()
            && self.count.is_none()
    }
}

/// A [`Selection`] applied along one walk of a log: it follows the names
/// interfaces have at each point and counts what it kept.
#[derive(Debug)]
pub struct Selector<'s> {
    selection: &'s Selection,
    /// Current name of each ifindex (header, then interface frames).
    names: HashMap<u32, String>,
    /// Records looked at.
    pub examined: u64,
    /// Records kept.
    pub matched: u64,
}

impl<'s> Selector<'s> {
    /// Starts a walk; `interfaces` are those the log's header names.
    pub fn new(selection: &'s Selection, interfaces: &[Interface]) -> Selector<'s> {
        let mut s = Selector {
            selection,
            names: HashMap::new(),
            examined: 0,
            matched: 0,
        };
        for i in interfaces {
            s.interface(i);
        }
        s
    }

    /// Learns an interface frame: `ifindex` is `name` from here on.
    pub fn interface(&mut self, interface: &Interface) {
        self.names.insert(interface.ifindex, interface.name.clone());
    }

    /// Whether the count is reached: the walk can stop.
    pub fn done(&self) -> bool {
        self.selection.count.is_some_and(|n| self.matched >= n)
    }

    /// Whether `ifindex`'s current name is selected; an ifindex the log
    /// never named goes by `if<N>`, the name the exporters give it.
    fn interface_matches(&self, ifindex: u32) -> bool {
        let wanted = |name: &str| self.selection.interfaces.iter().any(|w| w == name);
        match self.names.get(&ifindex) {
            Some(name) => wanted(name),
            None => wanted(&format!("if{ifindex}")),
        }
    }

    /// Looks at one record; true when it is kept.
    pub fn keep(&mut self, record: &PacketRecord<'_>) -> bool {
        if self.done() {
            return false;
        }
        self.examined += 1;
        let s = self.selection;
        let kept = s.from_ns.is_none_or(|from| record.tstamp_ns >= from)
            && s.to_ns.is_none_or(|to| record.tstamp_ns < to)
            && (s.hooks.is_empty() || s.hooks.contains(&record.hook))
            && (s.interfaces.is_empty() || self.interface_matches(record.ifindex))
            && s.filter.as_ref().is_none_or(|f| run(f, record) != 0);
        self.matched += u64::from(kept);
        kept
    }
}

/// Runs `filter` on a record as its link type shows it: the IP packet, or
/// the SLL2 header the export writes in front of it.
fn run(filter: &Filter, record: &PacketRecord<'_>) -> u32 {
    match filter.link {
        FilterLink::Raw => filter.program.run(record.data, record.orig_len),
        FilterLink::Sll2 => filter.program.run_split(
            &sll2_header(record),
            record.data,
            record.orig_len.saturating_add(SLL2_HEADER_LEN as u32),
        ),
    }
}

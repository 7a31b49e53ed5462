//! tcpdump expressions compiled by libpcap's own compiler (`pcap_compile`
//! on a dead handle of LINKTYPE_RAW, through the `pcap` crate), so that an
//! expression selects exactly the packets tcpdump selects: imp2 records
//! hold IP packets from the network header on, which is what a filter for
//! raw IP reads.

use std::fmt;

use pcap::{Capture, Linktype};

use super::bpf::{BadProgram, Insn, MAX_INSNS, Program};

/// What the packets a program runs on begin with: the link-layer header
/// type it is compiled for, which decides what `len`, `inbound` or
/// `ifindex` mean.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FilterLink {
    /// The IP header (DLT_RAW, 12 on Linux; LINKTYPE_RAW 101 in files):
    /// what the module's hooks and NFLOG see. `len` is the IP length.
    #[default]
    Raw,
    /// The 20-byte LINUX_SLL2 header (276) that `imp2-convert` writes by
    /// default, made up for each record: `len` counts it, and `ifindex N`,
    /// `inbound` and `outbound` work, as in `tcpdump -r` on the export.
    Sll2,
}

impl FilterLink {
    /// The DLT value `pcap_open_dead` takes.
    fn dlt(self) -> i32 {
        match self {
            FilterLink::Raw => 12,
            FilterLink::Sll2 => 276,
        }
    }
}
/// The snapshot length of the dead handle: libpcap's accepting `ret`s
/// return it. [`compile`] turns them into "the whole packet" (`u32::MAX`),
/// so that an accepted packet is kept up to the recorder's own snap length,
/// not cut at this number; no expression can write a `ret` of its own.
const DEAD_SNAPLEN: u32 = 65535;

/// A compiled expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The expression as given (words joined by spaces).
    pub expression: String,
    /// What the packets it runs on begin with.
    pub link: FilterLink,
    /// Its checked program.
    pub program: Program,
}

/// Why an expression did not compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompileError {
    /// libpcap's message, e.g. `syntax error`.
    Syntax(String),
    /// A link-layer primitive, which raw IP packets do not have.
    LinkLayer(String),
    /// More instructions than the kernel accepts.
    TooLong(usize),
    /// libpcap made a program the checker refuses (a libpcap bug).
    Refused(BadProgram),
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::Syntax(m) => write!(f, "{m}"),
            CompileError::LinkLayer(m) => write!(
                f,
                "{m} (imp2 records IP packets without a link-layer header, so \
                 `ether`, `vlan`, `arp` and similar primitives cannot match)"
            ),
            CompileError::TooLong(n) => write!(
                f,
                "the expression compiles to {n} instructions, more than the {MAX_INSNS} \
                 the kernel accepts"
            ),
            CompileError::Refused(e) => write!(f, "libpcap's program was refused: {e}"),
        }
    }
}

impl std::error::Error for CompileError {}

/// Joins the trailing words of a command line as tcpdump does.
pub fn join_words<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Compiles `expression` for raw IP packets (optimised, as tcpdump does
/// by default).
pub fn compile(expression: &str) -> Result<Filter, CompileError> {
    compile_for(expression, FilterLink::Raw)
}

/// Compiles `expression` for packets that begin with `link`'s header.
pub fn compile_for(expression: &str, link: FilterLink) -> Result<Filter, CompileError> {
    let dead = Capture::dead(Linktype(link.dlt()))
        .map_err(|e| CompileError::Syntax(format!("libpcap: {e}")))?;
    let compiled = dead.compile(expression, true).map_err(|e| {
        let text = libpcap_message(&e);
        if is_link_layer(&text) {
            CompileError::LinkLayer(text)
        } else {
            CompileError::Syntax(text)
        }
    })?;
    // The crate shows instructions only as `code jt jf k` text.
    let insns: Vec<Insn> = compiled
        .get_instructions()
        .iter()
        .map(|i| parse_insn(&i.to_string()))
        .collect::<Option<_>>()
        .ok_or_else(|| CompileError::Syntax("libpcap returned an unreadable program".into()))?;
    if insns.len() > MAX_INSNS {
        return Err(CompileError::TooLong(insns.len()));
    }
    let insns = insns
        .into_iter()
        .map(|i| {
            if i.code == 0x06 && i.k == DEAD_SNAPLEN {
                Insn { k: u32::MAX, ..i }
            } else {
                i
            }
        })
        .collect();
    let program = Program::new(insns).map_err(CompileError::Refused)?;
    Ok(Filter {
        expression: expression.to_string(),
        link,
        program,
    })
}

/// The text of libpcap's error, without the crate's wrapping.
fn libpcap_message(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// libpcap's words for a primitive the link type lacks, e.g. `ether
/// host`: "'ether' ... not supported on raw", "... supported only on
/// 802.11", "no VLAN support for ...", "ARP ... not supported".
fn is_link_layer(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "link layer",
        "link-layer",
        "not supported",
        "supported only on",
        "no vlan support",
        "no mpls support",
        "ethernet address",
        "mac address",
    ]
    .iter()
    .any(|w| m.contains(w))
}

fn parse_insn(text: &str) -> Option<Insn> {
    let mut w = text.split_whitespace().map(str::parse::<u64>);
    let mut next = || w.next()?.ok();
    Some(Insn {
        code: u16::try_from(next()?).ok()?,
        jt: u8::try_from(next()?).ok()?,
        jf: u8::try_from(next()?).ok()?,
        k: u32::try_from(next()?).ok()?,
    })
}

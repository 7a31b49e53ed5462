//! The capture filter of imp2-record, in tcpdump's terms: an expression in
//! the trailing words or from `-F FILE`, compiled by libpcap for raw IP;
//! `-i` interfaces by name; `-d` to print the compiled program and exit.
//! The imp2 module runs it in the kernel (sent with REGISTER); the NFLOG
//! source runs it here, on what the rule selected.

use std::path::{Path, PathBuf};

use clap::Args;
use imp2_format::filter::{Filter, FilterLink, Program, disassemble, join_words};
use imp2_format::wire::RegisterFilter;
use imp2_format::wire::abi::FILTER_IFINDEX_MAX;
use imp2_tools::Failure;
use imp2_tools::selection::compile_expression;

/// The options, flattened into imp2-record's.
#[derive(Args, Debug, Default)]
pub struct FilterArgs {
    /// Only packets that match this tcpdump filter expression (pcap-filter
    /// syntax, compiled by libpcap for raw IP packets, e.g. `tcp port 443
    /// and host 10.1.2.3`). Words are joined as tcpdump joins them; it
    /// combines with --proto, --hooks and --family by AND.
    #[arg(value_name = "EXPRESSION")]
    pub expression: Vec<String>,

    /// Read the filter expression from FILE (`#` starts a comment that
    /// runs to the end of the line).
    #[arg(short = 'F', value_name = "FILE", conflicts_with = "expression")]
    pub expression_file: Option<PathBuf>,

    /// Print the compiled filter program (as `tcpdump -d` does) and exit
    /// without capturing.
    #[arg(short = 'd')]
    pub dump: bool,

    /// Only packets of these interfaces (repeat the option or give a comma
    /// list; `any`: all, the default): the input device of received
    /// packets, the output device of sent ones.
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        value_delimiter = ','
    )]
    pub interfaces: Vec<String>,
}

/// The filter, compiled and resolved.
#[derive(Debug, Default)]
pub struct CaptureFilter {
    /// The compiled expression.
    pub filter: Option<Filter>,
    /// The interfaces asked for, with their ifindex.
    pub interfaces: Vec<(String, u32)>,
}

impl FilterArgs {
    /// Compiles the expression and looks the interfaces up: a syntax error,
    /// a link-layer primitive or an unknown interface is a usage error,
    /// before anything is registered or created.
    pub fn resolve(&self) -> Result<CaptureFilter, Failure> {
        let text = match &self.expression_file {
            Some(path) => Some(read_expression(path)?),
            None if self.expression.is_empty() => None,
            None => Some(join_words(&self.expression)),
        };
        let filter = match text.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(compile_expression(text, FilterLink::Raw)?),
        };
        let mut interfaces = Vec::new();
        for name in &self.interfaces {
            if name == "any" {
                return Ok(CaptureFilter {
                    filter,
                    interfaces: Vec::new(),
                });
            }
            if !interfaces.iter().any(|(n, _)| n == name) {
                interfaces.push((name.clone(), ifindex(name)?));
            }
        }
        if interfaces.len() > FILTER_IFINDEX_MAX as usize {
            return Err(Failure::usage(format!(
                "-i: {} interfaces, at most {FILTER_IFINDEX_MAX}",
                interfaces.len()
            )));
        }
        Ok(CaptureFilter { filter, interfaces })
    }
}

impl CaptureFilter {
    /// Whether it selects anything at all (else nothing is sent or run).
    pub fn is_empty(&self) -> bool {
        self.filter.is_none() && self.interfaces.is_empty()
    }

    /// The program, if an expression was given.
    pub fn program(&self) -> Option<&Program> {
        self.filter.as_ref().map(|f| &f.program)
    }

    /// The ifindexes asked for (empty: all).
    pub fn ifindexes(&self) -> Vec<u32> {
        self.interfaces.iter().map(|(_, i)| *i).collect()
    }

    /// What the module gets with REGISTER.
    pub fn for_register(&self) -> Option<RegisterFilter> {
        (!self.is_empty()).then(|| RegisterFilter {
            program: self.program().cloned(),
            ifindexes: self.ifindexes(),
        })
    }

    /// `-d`: the program in words, or what is captured without one.
    pub fn dump(&self) -> String {
        match &self.filter {
            Some(f) => disassemble(&f.program),
            None => "(no filter expression: every packet is captured)\n".into(),
        }
    }

    /// For the log's source description and the summary: the expression
    /// and the interfaces.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(f) = &self.filter {
            parts.push(format!("filter `{}`", f.expression));
        }
        if !self.interfaces.is_empty() {
            let names: Vec<&str> = self.interfaces.iter().map(|(n, _)| n.as_str()).collect();
            parts.push(format!("interfaces {}", names.join(",")));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// `-F FILE`: the file's text without `#` comments.
fn read_expression(path: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(format!(
            "-F {}: {}",
            path.display(),
            imp2_format::export::io_reason(&e)
        ))
    })?;
    Ok(text
        .lines()
        .map(|l| l.split_once('#').map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join(" "))
}

/// An interface's index in this network namespace, from sysfs; an unknown
/// name is an error listing the interfaces there are.
fn ifindex(name: &str) -> Result<u32, Failure> {
    let valid = !name.is_empty() && !name.contains('/') && name != "." && name != "..";
    let path = Path::new("/sys/class/net").join(name).join("ifindex");
    match valid.then(|| std::fs::read_to_string(&path)) {
        Some(Ok(text)) => text.trim().parse().map_err(|_| {
            Failure::runtime(format!("-i {name}: {} holds no ifindex", path.display()))
        }),
        _ => {
            let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            Err(Failure::usage(format!(
                "-i {name}: no such interface (there are: {}, or any)",
                names.join(", ")
            )))
        }
    }
}

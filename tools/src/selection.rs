//! The reading filters both readers take (`imp2-convert` and `imp2-info`):
//! a tcpdump expression in the trailing words, `-c`, `--from`/`--to`, `-i`
//! and `--hook`, turned into an [`imp2_format::filter::Selection`].

use clap::Args;
use imp2_format::filter::{Filter, FilterLink, Selection, compile_for, join_words};
use imp2_format::record::Hook;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Failure;

/// The options, flattened into each tool's arguments.
#[derive(Debug, Args)]
pub struct SelectionArgs {
    /// Only records that match this tcpdump filter expression (pcap-filter
    /// syntax, compiled by libpcap for raw IP: `udp port 53`, `host
    /// 10.1.2.3 and not tcp`). Several words are joined as tcpdump joins
    /// them.
    #[arg(value_name = "EXPRESSION")]
    pub expression: Vec<String>,
    /// Stop after the first N matching records.
    #[arg(short = 'c', value_name = "N", value_parser = crate::cli::count_at_least_one::<u64>)]
    pub count: Option<u64>,
    /// Only records captured at or after TIME: RFC 3339
    /// (`2026-12-05T10:15:00Z`, `2026-12-05T11:15:00.5+01:00`) or seconds
    /// since the epoch (`1796465700.25`).
    #[arg(long, value_name = "TIME", value_parser = parse_time_ns)]
    pub from: Option<u64>,
    /// Only records captured before TIME (same forms as --from).
    #[arg(long, value_name = "TIME", value_parser = parse_time_ns)]
    pub to: Option<u64>,
    /// Only records of these interfaces (repeat the option or give a comma
    /// list), by the name the log gives them; an ifindex the log never
    /// named is `if<N>`.
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        value_delimiter = ','
    )]
    pub interfaces: Vec<String>,
    /// Only records of these capture points: pre, in, forward, out, post
    /// (repeat or comma list).
    #[arg(long = "hook", value_name = "HOOK", value_delimiter = ',', value_parser = parse_hook)]
    pub hooks: Vec<Hook>,
}

impl SelectionArgs {
    /// Compiles the expression for packets that begin with `link`'s header
    /// (what the output will hold, so that `tcpdump -r` on it selects the
    /// same) and gathers the rest; a bad expression is a usage error with
    /// libpcap's message.
    pub fn selection(&self, link: FilterLink) -> Result<Selection, Failure> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && to <= from
        {
            return Err(Failure::usage("--to must be later than --from"));
        }
        let filter = if self.expression.is_empty() {
            None
        } else {
            Some(compile_expression(&join_words(&self.expression), link)?)
        };
        Ok(Selection {
            filter,
            interfaces: self.interfaces.clone(),
            hooks: self.hooks.clone(),
            from_ns: self.from,
            to_ns: self.to,
            count: self.count,
        })
    }
}

/// Compiles a filter expression for `link`; what libpcap refuses is a usage
/// error naming the expression (the one wording of imp2-record, imp2-convert
/// and imp2-info).
pub fn compile_expression(text: &str, link: FilterLink) -> Result<Filter, Failure> {
    compile_for(text, link).map_err(|e| Failure::usage(format!("filter `{text}`: {e}")))
}

/// `pre`, `in`, `forward`, `out`, `post` (the names the reports use).
pub fn parse_hook(s: &str) -> Result<Hook, String> {
    (0..=4)
        .map(Hook)
        .find(|h| h.name() == s)
        .ok_or_else(|| format!("unknown hook `{s}` (pre, in, forward, out, post)"))
}

/// RFC 3339 or epoch seconds with an optional fraction, to ns since the
/// epoch; the fraction is read digit by digit, exactly.
pub fn parse_time_ns(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "`{s}` is not a time: give RFC 3339 (2026-12-05T10:15:00Z) or seconds since the \
             epoch (1796465700.25)"
        )
    };
    if let Some((secs, frac)) = epoch_parts(s) {
        let secs: u64 = secs.parse().map_err(|_| bad())?;
        if frac.len() > 9 {
            return Err(format!("`{s}`: at most 9 digits after the point (ns)"));
        }
        let frac_ns: u64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<9}").parse().map_err(|_| bad())?
        };
        return secs
            .checked_mul(1_000_000_000)
            .and_then(|ns| ns.checked_add(frac_ns))
            .ok_or_else(bad);
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| bad())?;
    u64::try_from(t.unix_timestamp_nanos())
        .map_err(|_| format!("`{s}` is before 1970, when no packet was captured"))
}

/// `1796465700.25` as ("1796465700", "25"); None unless all digits with
/// at most one point.
fn epoch_parts(s: &str) -> Option<(&str, &str)> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    (!secs.is_empty() && digits(secs) && digits(frac)).then_some((secs, frac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_both_forms() {
        assert_eq!(parse_time_ns("0"), Ok(0));
        assert_eq!(parse_time_ns("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_time_ns("1.000000001"), Ok(1_000_000_001));
        assert_eq!(
            parse_time_ns("2026-12-05T10:15:00Z"),
            parse_time_ns("1796465700")
        );
        assert_eq!(
            parse_time_ns("2026-12-05T11:15:00.25+01:00"),
            parse_time_ns("1796465700.25")
        );
        for bad in [
            "",
            ".5",
            "1.2.3",
            "yesterday",
            "1.0000000001",
            "1969-01-01T00:00:00Z",
        ] {
            assert!(parse_time_ns(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hooks_by_name() {
        assert_eq!(parse_hook("pre"), Ok(Hook::PRE_ROUTING));
        assert_eq!(parse_hook("post"), Ok(Hook::POST_ROUTING));
        assert!(parse_hook("prerouting").unwrap_err().contains("pre, in"));
    }
}

//! The NFLOG source's configuration: what the user asked for, the BIND
//! request that applies it in one step, and why the kernel may refuse it.

use std::io;

use imp2_format::filter::Program;
use imp2_format::nflog::{ConfigRequest, CopyMode, consts};

/// Default queue threshold: high enough that buffers fill by size at high
/// rates.
pub const QTHRESH_DEFAULT: u32 = 4096;
/// Default flush timeout, milliseconds.
pub const FLUSH_MS_DEFAULT: u32 = 100;
/// The most NFLOG copies of a packet: a larger snap length is cut to this.
pub const COPY_RANGE_MAX: u32 = consts::COPY_RANGE_MAX;

/// What the user asked of the NFLOG source.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The NFLOG group.
    pub group: u16,
    /// Payload bytes to copy per packet (clamped to the kernel's maximum).
    pub snaplen: u32,
    /// Kernel buffer size in bytes (4096-131072; wider as typed, so that
    /// `validate` can name what the user asked for).
    pub bufsize: usize,
    /// Packets per kernel buffer at most.
    pub qthresh: u32,
    /// Flush timeout in milliseconds (rounded to the kernel's 10 ms unit).
    pub flush_ms: u32,
    /// Socket receive buffer, bytes.
    pub rcvbuf: usize,
    /// `FAMILY_F_*` bits: families to record (others are skipped).
    pub families: u32,
    /// The capture filter's program, run here on each packet the rule
    /// logged (the kernel's NFLOG has no place for it).
    pub program: Option<Program>,
    /// Interfaces to keep (empty: all), by the record's ifindex.
    pub ifindexes: Vec<u32>,
}

impl Settings {
    /// Checks the ranges the kernel enforces (it silently ignores a bad
    /// buffer size instead of refusing it).
    pub fn validate(&self) -> Result<(), String> {
        let (lo, hi) = (consts::NLBUFSIZ_MIN, consts::NLBUFSIZ_MAX);
        if !(lo as usize..=hi as usize).contains(&self.bufsize) {
            return Err(format!(
                "--nflog-bufsize must be {lo}-{hi} bytes, not {}",
                self.bufsize
            ));
        }
        if self.qthresh == 0 {
            return Err("--nflog-qthresh must be at least 1".into());
        }
        if self.snaplen == 0 {
            return Err("--snaplen must be at least 1".into());
        }
        Ok(())
    }

    pub(super) fn copy_range(&self) -> u32 {
        self.snaplen.min(COPY_RANGE_MAX)
    }

    /// The BIND request with every setting: the kernel applies them all in
    /// one step, so no packet is copied with the defaults in between.
    pub(super) fn bind_request(&self) -> ConfigRequest {
        ConfigRequest {
            family: consts::AF_UNSPEC,
            group: self.group,
            command: Some(consts::CMD_BIND),
            mode: Some(CopyMode {
                mode: consts::COPY_PACKET,
                range: self.copy_range(),
            }),
            // `NflogSource::open` validates before binding, so this fits;
            // the fallback only keeps the conversion total.
            nlbufsiz: Some(u32::try_from(self.bufsize).unwrap_or(u32::MAX)),
            timeout: Some(self.flush_ms.div_ceil(10)),
            qthresh: Some(self.qthresh),
            flags: Some(consts::CFG_F_SEQ),
        }
    }
}

/// Why the kernel refused to BIND `group` for our socket (port `port_id`)
/// with `errno`.
pub(super) fn explain_bind_errno(group: u16, port_id: u32, errno: i32) -> String {
    match errno {
        libc::EPERM => explain_eperm(group, port_id),
        libc::EBUSY => format!("NFLOG group {group} is already bound by this socket"),
        // nfnetlink found no "log" subsystem and could not load it.
        libc::EINVAL | libc::EAGAIN => "the kernel's NFLOG (nfnetlink_log) is not available: \
                                        load it with `modprobe nfnetlink_log`"
            .into(),
        e => format!(
            "the kernel refused to bind NFLOG group {group}: {}",
            io::Error::from_raw_os_error(e)
        ),
    }
}

/// Why BIND answered EPERM: the group belongs to another socket, or we lack
/// CAP_NET_ADMIN. `/proc/net/netfilter/nfnetlink_log` (readable by root)
/// names the group's owner; our own effective capabilities tell the rest.
fn explain_eperm(group: u16, own_port: u32) -> String {
    let no_cap = "configuring NFLOG needs CAP_NET_ADMIN: run imp2-record as root or give it \
                  cap_net_admin (setcap cap_net_admin+ep imp2-record)";
    match group_owner(group) {
        Some(port) if port != own_port => {
            let who = match process_of_netlink_port(port) {
                Some((pid, name)) => format!("{name}, pid {pid}"),
                None => format!("netlink port {port}; ulogd?"),
            };
            format!(
                "NFLOG group {group} is already bound by another program ({who}): stop it or \
                 record another group with --source nflog:GROUP"
            )
        }
        _ => match has_net_admin() {
            Some(false) => no_cap.into(),
            Some(true) => format!(
                "NFLOG group {group} is already bound by another program (ulogd?): stop it or \
                 record another group with --source nflog:GROUP"
            ),
            None => format!(
                "binding NFLOG group {group} was refused (EPERM): {no_cap}; or another program \
                 (ulogd?) holds the group"
            ),
        },
    }
}

/// Whether this process has CAP_NET_ADMIN in its effective set (`CapEff`
/// of `/proc/self/status`); `None` when that cannot be read.
fn has_net_admin() -> Option<bool> {
    const CAP_NET_ADMIN: u32 = 12;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let caps = u64::from_str_radix(hex, 16).ok()?;
    Some(caps & (1 << CAP_NET_ADMIN) != 0)
}

const NFNETLINK_LOG_PROC: &str = "/proc/net/netfilter/nfnetlink_log";

/// The netlink port bound to `group` in this network namespace
/// (`/proc/net/netfilter/nfnetlink_log`: group, port id, queue length, copy
/// mode, copy range, flush timeout, use count).
fn group_owner(group: u16) -> Option<u32> {
    let table = std::fs::read_to_string(NFNETLINK_LOG_PROC).ok()?;
    table.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let g = f.next()?.parse::<u16>().ok()?;
        let port = f.next()?.parse::<u32>().ok()?;
        (g == group).then_some(port)
    })
}

/// The process holding the NETLINK_NETFILTER socket with port `port`:
/// its inode from `/proc/net/netlink`, then the process with that socket
/// among its descriptors.
fn process_of_netlink_port(port: u32) -> Option<(u32, String)> {
    let netlink = std::fs::read_to_string("/proc/net/netlink").ok()?;
    // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
    let inode = netlink.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let proto = f.get(1)?.parse::<i32>().ok()?;
        let pid = f.get(2)?.parse::<u32>().ok()?;
        (proto == consts::NETLINK_NETFILTER && pid == port)
            .then(|| f.last().map(|s| s.to_string()))?
    })?;
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()) {
                let name = std::fs::read_to_string(entry.path().join("comm"))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| "?".into());
                return Some((pid, name));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use imp2_format::wire::abi::FAMILY_F_IPV4;

    #[test]
    fn settings_are_checked_and_the_bind_carries_them_all() {
        let ok = Settings {
            group: 5,
            snaplen: 70_000,
            bufsize: 131_072,
            qthresh: 4096,
            flush_ms: 95,
            rcvbuf: 1 << 20,
            families: FAMILY_F_IPV4,
            program: None,
            ifindexes: Vec::new(),
        };
        assert!(ok.validate().is_ok());
        assert!(
            Settings {
                bufsize: 4095,
                ..ok.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            Settings {
                bufsize: 131_073,
                ..ok.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            Settings {
                qthresh: 0,
                ..ok.clone()
            }
            .validate()
            .is_err()
        );
        let bind = ok.bind_request();
        assert_eq!(bind.command, Some(consts::CMD_BIND));
        assert_eq!(
            bind.mode,
            Some(CopyMode {
                mode: consts::COPY_PACKET,
                range: 65_531
            })
        );
        assert_eq!(bind.timeout, Some(10), "95 ms rounds up to 10 hundredths");
        assert_eq!(bind.flags, Some(consts::CFG_F_SEQ));
        assert_eq!(bind.nlbufsiz, Some(131_072));
        assert_eq!(bind.qthresh, Some(4096));
    }
}

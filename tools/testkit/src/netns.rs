//! Network namespaces for tests and benchmarks that need real traffic.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::run;

/// Two network namespaces joined by a veth pair (`va` in A, `vb` in B), for
/// tests and benchmarks that need real traffic: A sends, B receives (rules,
/// captures). IPv4 `NET.1/24` on A and `NET.2/24` on B; IPv6 `NET6::1/64`
/// and `::2` (no DAD) when asked, else IPv6 off (no neighbour discovery
/// or MLD packets in captures). Both namespaces, and with them the pair,
/// are deleted on drop, also when a step fails or panics.
#[derive(Debug)]
pub struct VethPair {
    /// Sending side.
    pub a: String,
    /// Receiving side.
    pub b: String,
    /// Its IPv4 /24 prefix (`10.199.7`).
    pub net: String,
    /// Its IPv6 /64 prefix (`fd00:199:7:`), if IPv6 is on.
    pub net6: Option<String>,
}

impl VethPair {
    /// Device of the pair in A.
    pub const DEV_A: &'static str = "va";
    /// Device of the pair in B.
    pub const DEV_B: &'static str = "vb";

    /// Creates `{tag}-{pid}-a` and `-b` with the pair between them.
    pub fn new(tag: &str, net: &str, net6: Option<&str>) -> Result<VethPair, String> {
        let pid = std::process::id();
        // The guard exists before the first namespace does.
        let pair = VethPair {
            a: format!("{tag}-{pid}-a"),
            b: format!("{tag}-{pid}-b"),
            net: net.to_string(),
            net6: net6.map(str::to_string),
        };
        run("ip", &["netns", "add", &pair.a])?;
        run("ip", &["netns", "add", &pair.b])?;
        run(
            "ip",
            &[
                "link",
                "add",
                Self::DEV_A,
                "netns",
                &pair.a,
                "type",
                "veth",
                "peer",
                "name",
                Self::DEV_B,
                "netns",
                &pair.b,
            ],
        )?;
        for (ns, dev, host) in [(&pair.a, Self::DEV_A, 1), (&pair.b, Self::DEV_B, 2)] {
            match &pair.net6 {
                Some(_) => {
                    let v6 = format!("{}/64", pair.v6(host));
                    run("ip", &["-n", ns, "addr", "add", &v6, "dev", dev, "nodad"])?;
                }
                None => {
                    run(
                        "ip",
                        &[
                            "netns",
                            "exec",
                            ns,
                            "sysctl",
                            "-qw",
                            "net.ipv6.conf.all.disable_ipv6=1",
                            "net.ipv6.conf.default.disable_ipv6=1",
                        ],
                    )?;
                }
            }
            let v4 = format!("{}/24", pair.v4(host));
            run("ip", &["-n", ns, "addr", "add", &v4, "dev", dev])?;
            run("ip", &["-n", ns, "link", "set", dev, "up"])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        if pair.net6.is_some() {
            // Permanent IPv6 neighbour entries: no neighbour discovery
            // before the first packet. Without them the NFLOG test lost
            // all of its IPv6 traffic (and none of its IPv4) in about 1
            // run of 6, as if address resolution never completed.
            for (ns, dev, peer_ns, peer_dev, peer) in [
                (&pair.a, Self::DEV_A, &pair.b, Self::DEV_B, 2),
                (&pair.b, Self::DEV_B, &pair.a, Self::DEV_A, 1),
            ] {
                let link = run("ip", &["-n", peer_ns, "-j", "link", "show", peer_dev])?;
                let v: serde_json::Value =
                    serde_json::from_str(&link).map_err(|e| format!("ip -j link: {e}"))?;
                let mac = v[0]["address"]
                    .as_str()
                    .ok_or("ip -j link: no address")?
                    .to_string();
                let addr = pair.v6(peer);
                run(
                    "ip",
                    &[
                        "-n",
                        ns,
                        "-6",
                        "neigh",
                        "replace",
                        &addr,
                        "lladdr",
                        &mac,
                        "dev",
                        dev,
                        "nud",
                        "permanent",
                    ],
                )?;
            }
        }
        Ok(pair)
    }

    /// IPv4 address of host 1 (A) or 2 (B).
    pub fn v4(&self, host: u8) -> String {
        format!("{}.{host}", self.net)
    }

    /// IPv6 address of host 1 (A) or 2 (B) (empty prefix if IPv6 is off).
    pub fn v6(&self, host: u8) -> String {
        format!("{}:{host}", self.net6.as_deref().unwrap_or(""))
    }

    /// `ip netns exec NS PROGRAM ARGS` (iproute2 execs the program in
    /// place: the child's pid is the program's), stdin from /dev/null.
    pub fn exec<S: AsRef<OsStr>>(&self, ns: &str, program: &Path, args: &[S]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program).args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Loads an nft ruleset into B (through a file in `dir`).
    pub fn nft(&self, ruleset: &str, dir: &Path) -> Result<(), String> {
        let path = dir.join(format!("{}.nft", self.b));
        std::fs::write(&path, ruleset).map_err(|e| format!("{}: {e}", path.display()))?;
        let file = path.to_string_lossy().into_owned();
        let loaded = run("ip", &["netns", "exec", &self.b, "nft", "-f", &file]);
        let _ = std::fs::remove_file(&path);
        loaded.map(drop)
    }

    /// Packet counters of B's rules that have a comment, by comment.
    pub fn counters(&self) -> Result<std::collections::BTreeMap<String, u64>, String> {
        let json = run(
            "ip",
            &["netns", "exec", &self.b, "nft", "-j", "list", "ruleset"],
        )?;
        let v: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| format!("nft -j: {e}"))?;
        let items = v["nftables"].as_array().ok_or("nft -j: no `nftables`")?;
        let mut out = std::collections::BTreeMap::new();
        for rule in items.iter().filter_map(|i| i.get("rule")) {
            let Some(comment) = rule["comment"].as_str() else {
                continue;
            };
            for c in rule["expr"].as_array().into_iter().flatten() {
                if let Some(packets) = c.get("counter").and_then(|c| c["packets"].as_u64()) {
                    out.insert(comment.to_string(), packets);
                }
            }
        }
        Ok(out)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting a namespace removes its veth end, and so the pair.
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

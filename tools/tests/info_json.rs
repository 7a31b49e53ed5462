//! imp2-info: the JSON summary, the text report, --verify, and its errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use imp2_format::log::{Interface, LogHeader, LogWriter, Losses, StopCause, StopReason};
use imp2_format::{Family, Hook, PacketRecord};
use serde_json::{Value, json};

const INFO: &str = env!("CARGO_BIN_EXE_imp2-info");
const T: u64 = 1_700_000_000_000_000_007;

fn header() -> LogHeader {
    LogHeader {
        snaplen: 64,
        source: "nflog group 5".into(),
        hostname: "box".into(),
        kernel_release: "6.12.9".into(),
        tsresol_digits: 6,
        created_ns: T - 1,
        interfaces: vec![Interface {
            ifindex: 3,
            name: "eth1".into(),
        }],
    }
}

fn rec(
    ts: u64,
    ifindex: u32,
    hook: Hook,
    family: Family,
    protocol: u8,
    data: &[u8],
    orig: u32,
) -> PacketRecord<'_> {
    PacketRecord {
        tstamp_ns: ts,
        ifindex,
        orig_len: orig,
        hook,
        family,
        protocol,
        data,
    }
}

/// Five records: eth1 x2, wg0 (announced later) x1, ifindex 8 (never
/// named) x2; losses in two deltas; closed when `close`, stopped by
/// SIGTERM.
fn write_log(dir: &Path, close: bool) -> PathBuf {
    let path = dir.join("x.log");
    let mut w = LogWriter::create(&path, &header()).unwrap();
    let d = [0x45u8; 40];
    let (v4, v6) = (Family::IPV4, Family::IPV6);
    let (pre, out) = (Hook::PRE_ROUTING, Hook::LOCAL_OUT);
    w.append(&rec(T + 10, 3, pre, v4, 6, &d, 1500)).unwrap();
    w.append(&rec(T, 3, out, v4, 17, &d[..20], 20)).unwrap();
    w.commit().unwrap();
    let mut l = Losses::default();
    l.kernel[0] = 2;
    l.socket_errors = 1;
    w.add_losses(&l).unwrap();
    w.add_interface(&Interface {
        ifindex: 4,
        name: "wg0".into(),
    })
    .unwrap();
    w.append(&rec(T + 999, 4, pre, v6, 58, &d, 40)).unwrap();
    w.append(&rec(T + 5, 8, Hook(7), v6, 99, &d[..1], 1))
        .unwrap();
    w.append(&rec(T + 6, 8, out, Family(7), 255, &d[..0], 0))
        .unwrap();
    w.commit().unwrap();
    let l = Losses {
        gap_records: 4,
        gap_batches: 1,
        ..Losses::default()
    };
    w.add_losses(&l).unwrap();
    // Without finish, `w` just goes away: as if the recorder died between
    // frames.
    if close {
        w.set_stop(StopReason::new(StopCause::Signal, "SIGTERM"));
        w.finish(T + 5000).unwrap();
    }
    path
}

fn info(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(INFO).args(args).output().unwrap()
}

fn json_of(path: &Path) -> Value {
    let out = info(&["--json".as_ref(), path.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn one_line(out: &Output) -> String {
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.starts_with("imp2-info: "), "{stderr:?}");
    for bad in ["panicked", "Kind", "{", "Os {"] {
        assert!(!stderr.contains(bad), "{bad:?} in {stderr:?}");
    }
    stderr.trim_end().to_string()
}

#[test]
fn json_summary() {
    let dir = tempfile::tempdir().unwrap();
    let v = json_of(&write_log(dir.path(), true));
    assert_eq!(v["records"], 5);
    assert_eq!(v["first_ns"], T);
    assert_eq!(v["last_ns"], T + 999);
    assert_eq!(v["captured_bytes"], 40 + 20 + 40 + 1);
    assert_eq!(v["original_bytes"], 1500 + 20 + 40 + 1);
    assert_eq!(
        v["interfaces"],
        json!([
            {"ifindex": 3, "name": "eth1", "records": 2},
            {"ifindex": 4, "name": "wg0", "records": 1},
            {"ifindex": 8, "name": "if8", "records": 2},
        ])
    );
    assert_eq!(v["hooks"], json!({"pre": 2, "out": 2, "hook7": 1}));
    assert_eq!(v["families"], json!({"ipv4": 2, "ipv6": 2, "family7": 1}));
    assert_eq!(
        v["protocols"],
        json!({"tcp": 1, "udp": 1, "icmpv6": 1, "99": 1, "unknown": 1})
    );
    assert_eq!(
        v["losses"],
        json!({
            "kernel_nomem": 2, "kernel_rcvbuf": 0, "kernel_send": 0, "kernel_other": 0,
            "gap_records": 4, "gap_batches": 1, "truncated_batches": 0,
            "malformed_messages": 0, "socket_errors": 1, "unwritten": 0, "lost_to_damage": 0,
            "records_lost": 6,
        })
    );
    assert_eq!(v["integrity"]["closed"], true);
    assert_eq!(v["integrity"]["footer"], "read");
    assert_eq!(v["integrity"]["uncommitted_bytes"], 0);
    assert_eq!(v["integrity"]["error"], Value::Null);
    assert_eq!(v["integrity"]["footer_matches"], true);
    assert_eq!(v["header"]["source"], "nflog group 5");
    assert_eq!(v["header"]["hostname"], "box");
    assert_eq!(v["header"]["kernel_release"], "6.12.9");
    assert_eq!(v["header"]["snaplen"], 64);
    assert_eq!(v["header"]["tsresol_digits"], 6);
    assert_eq!(v["header"]["created_ns"], T - 1);
    assert_eq!(
        v["stop"],
        json!({"cause": "signal", "code": 1, "detail": "SIGTERM"})
    );
}

#[test]
fn empty_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.log");
    LogWriter::create(&path, &header())
        .unwrap()
        .finish(T)
        .unwrap();
    let v = json_of(&path);
    assert_eq!(v["records"], 0);
    assert_eq!(v["first_ns"], Value::Null);
    assert_eq!(v["last_ns"], Value::Null);
    assert_eq!(
        v["interfaces"],
        json!([{"ifindex": 3, "name": "eth1", "records": 0}])
    );
    // Closed without a stop reason: the footer says cause 0.
    assert_eq!(v["stop"], Value::Null);
    let out = info(&[path.as_os_str()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no records"), "{text}");
    // A 1.2 log: no "(a log before format 1.2)".
    assert!(text.contains("ended       not recorded\n"), "{text}");
}

#[test]
fn text_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), true);
    let out = info(&[path.as_os_str()]);
    assert!(out.status.success());
    assert!(out.stderr.is_empty());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "nflog group 5",
        "6.12.9",
        "records     5",
        "2023-11-14T22:13:20.000000007Z (1700000000000000007 ns)",
        "2023-11-14T22:13:20.000001006Z (1700000000000001006 ns)",
        "span        0.000000999 s",
        "101 captured, 1561 original",
        "if8 (ifindex 8): 2 records",
        "hook7 1, out 2, pre 2",
        "6 records lost (kernel_nomem 2, gap_records 4; gap_batches 1, socket_errors 1)",
        "closed cleanly",
        "10^-6 s",
        "ended       stopped by SIGTERM",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
}

#[test]
fn verify_ok() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), true);
    let out = info(&["--verify".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok, 5 records, closed cleanly"));
}

/// A log whose recorder died (or still runs) is sound up to its committed
/// length; the space past it is normal and not an integrity problem.
#[test]
fn verify_unclosed_with_uncommitted_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), false);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0xab; 37]); // half a frame never committed
    std::fs::write(&path, &bytes).unwrap();
    let v = json_of(&path);
    assert_eq!(v["records"], 5);
    assert_eq!(v["integrity"]["closed"], false);
    assert_eq!(v["integrity"]["footer_matches"], Value::Null);
    assert_eq!(v["stop"], Value::Null, "no footer, no stop reason");
    assert!(
        v["integrity"]["uncommitted_bytes"].as_u64().unwrap() >= 37,
        "{v}"
    );
    let out = info(&["--verify".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("not closed") && text.contains("uncommitted bytes"),
        "{text}"
    );
}

/// Offset of the first frame (the header's `header_len`, FORMAT.md §3).
fn header_len(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize
}

#[test]
fn verify_damaged_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), true);
    let mut bytes = std::fs::read(&path).unwrap();
    // Inside the payload of the first frame (12-byte frame header).
    let first = header_len(&bytes);
    bytes[first + 20] ^= 0x5a;
    std::fs::write(&path, &bytes).unwrap();

    let out = info(&["--verify".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_line(&out);
    assert_eq!(
        line,
        format!(
            "imp2-info: {}: damaged frame: checksum mismatch (stored {}, computed {}) at byte {first}",
            path.display(),
            // Whatever the CRCs are: compare the rest.
            &line[line.find("stored ").unwrap() + 7..line.find(", computed").unwrap()],
            &line[line.find("computed ").unwrap() + 9..line.find(") at").unwrap()],
        )
    );

    // Without --verify the report says it, and succeeds.
    let v = json_of(&path);
    assert_eq!(v["integrity"]["error"]["offset"], first);
    assert_eq!(v["records"], 0);
    let out = info(&[path.as_os_str()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("damaged: damaged frame"));
}

/// A file cut below its committed length is torn: what lies wholly before
/// the cut is read, then the walk ends with a "torn tail" error.
#[test]
fn verify_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), true);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 10).unwrap(); // into the footer
    drop(f);
    let out = info(&["--verify".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_line(&out);
    assert!(
        line.contains("torn tail") && line.contains(" at byte "),
        "{line}"
    );
    let v = json_of(&path);
    assert_eq!(v["records"], 5, "every frame before the cut is read");
    assert!(
        v["integrity"]["error"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("torn tail")
    );
}

/// CRC32C, bitwise (FORMAT.md section 1): the tests' own, to forge frames.
fn crc32c(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for &b in parts.iter().flat_map(|p| p.iter()) {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Rewrites the FOOTER (the last frame) of the closed log at `path`:
/// `edit` changes its payload, then its length, its CRC, the header's
/// `committed_len` and the file's length follow (FORMAT.md sections 3, 4).
fn forge_footer(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    let end = u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize;
    assert_eq!(
        end,
        bytes.len(),
        "a closed log ends at its committed length"
    );
    // The footer of `write_log` is under 256 bytes: find its start by
    // trying each (type 4, a length that ends at the end, a matching CRC).
    let start = (end - 12 - 255..end - 12)
        .find(|&at| {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            bytes[at + 4] == 4
                && at + 12 + len == end
                && crc32c(&[&bytes[at..at + 8], &bytes[at + 12..]]) == crc
        })
        .expect("the footer frame");
    let mut payload = bytes[start + 12..].to_vec();
    edit(&mut payload);
    bytes.truncate(start);
    let mut head = [0u8; 12];
    head[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    head[4] = 4;
    let crc = crc32c(&[&head[..8], &payload]);
    head[8..].copy_from_slice(&crc.to_le_bytes());
    bytes.extend_from_slice(&head);
    bytes.extend_from_slice(&payload);
    let len = bytes.len() as u64;
    bytes[16..24].copy_from_slice(&len.to_le_bytes());
    std::fs::write(path, &bytes).unwrap();
}

/// A footer of a later version: a cause this reader does not know is
/// shown by number, and fields after the stop reason are ignored.
#[test]
fn unknown_stop_cause() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), true);
    forge_footer(&path, |p| {
        // The stop reason ends the payload: cause 1, length 7, "SIGTERM".
        let at = p.len() - 9;
        assert_eq!(&p[at..], b"\x01\x07SIGTERM");
        p[at] = 42;
        p.extend_from_slice(&[0x05, 0xff, 0x00]); // a later field
    });
    let v = json_of(&path);
    assert_eq!(
        v["stop"],
        json!({"cause": "unknown", "code": 42, "detail": "SIGTERM"})
    );
    assert_eq!(v["integrity"]["footer_matches"], true);
    let out = info(&[path.as_os_str()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ended       cause 42: SIGTERM"), "{text}");
}

/// A 1.1 footer (no stop reason after the loss counters) reads as "not
/// recorded", as does cause 0.
#[test]
fn footer_without_a_stop_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), true);
    forge_footer(&path, |p| p.truncate(p.len() - 9));
    let v = json_of(&path);
    assert_eq!(v["stop"], Value::Null);
    assert_eq!(v["integrity"]["closed"], true);
    assert_eq!(v["integrity"]["footer_matches"], true);
    let out = info(&["--verify".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(0));
    let out = info(&[path.as_os_str()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ended       not recorded"), "{text}");
}

#[test]
fn missing_file() {
    let out = info(&["/nonexistent/dir/x.log".as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_line(&out),
        "imp2-info: /nonexistent/dir/x.log: No such file or directory"
    );
}

#[test]
fn not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "not packets\n".repeat(100)).unwrap();
    let out = info(&[path.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_line(&out),
        format!("imp2-info: {}: not an imp2 log (bad magic)", path.display())
    );
}

/// An empty file and captures are named for what they are, not "bad magic".
#[test]
fn mistaken_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let capture = "not an imp2 log (already a capture: open it with Wireshark, tshark or \
                   tcpdump -r)";
    for (name, bytes, what) in [
        (
            "empty.log",
            &[][..],
            "an empty file, not an imp2 log".to_string(),
        ),
        // pcapng: SHB block type 0x0a0d0d0a (the same in either byte order).
        (
            "a.pcapng",
            &[0x0a, 0x0d, 0x0d, 0x0a][..],
            format!("a pcapng file, {capture}"),
        ),
        // Classic pcap, µs, big-endian (magic 0xa1b2c3d4), version 2.4.
        (
            "b.pcap",
            &[0xa1, 0xb2, 0xc3, 0xd4, 0x00, 0x02, 0x00, 0x04][..],
            format!("a pcap file, {capture}"),
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = info(&[path.as_os_str()]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            one_line(&out),
            format!("imp2-info: {}: is {what}", path.display())
        );
    }
}

#[test]
fn newer_format_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), true);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..10].copy_from_slice(&7u16.to_le_bytes()); // major (FORMAT.md §3)
    bytes[10..12].copy_from_slice(&0u16.to_le_bytes()); // minor
    std::fs::write(&path, &bytes).unwrap();
    let out = info(&[path.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_line(&out).contains("format version 7.0"));
}

#[test]
fn usage() {
    assert_eq!(info(&[]).status.code(), Some(2));
    assert_eq!(
        info(&["--bogus".as_ref(), "x".as_ref()]).status.code(),
        Some(2)
    );
}

/// --skip-damaged reads on past a damaged frame: the records after it are
/// counted, the damage is listed with the records lost to it (from the
/// footer), and --verify still fails.
#[test]
fn skip_damaged_reads_past_a_damaged_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), true);
    let mut bytes = std::fs::read(&path).unwrap();
    // The first frame holds the first two records (12-byte frame header,
    // payload_len in its first 4 bytes); damage its payload.
    let first = header_len(&bytes);
    let first_len = 12 + u32::from_le_bytes(bytes[first..first + 4].try_into().unwrap()) as usize;
    bytes[first + 20] ^= 0x5a;
    std::fs::write(&path, &bytes).unwrap();

    let out = info(&[
        "--json".as_ref(),
        "--skip-damaged".as_ref(),
        path.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["records"], 3, "the three records after the damage");
    let skipped = v["integrity"]["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["offset"], first);
    assert_eq!(skipped[0]["len"], first_len);
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("checksum mismatch")
    );
    assert_eq!(v["integrity"]["lost_to_damage"], 2);
    assert_eq!(v["integrity"]["error"], Value::Null);
    assert_eq!(v["integrity"]["footer_matches"], Value::Null);
    assert_eq!(v["integrity"]["closed"], true);

    let out = info(&[
        "--verify".as_ref(),
        "--skip-damaged".as_ref(),
        path.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_line(&out);
    assert!(
        line.contains(&format!(
            "damaged frames skipped: {first_len} bytes in 1 place, the first at byte {first}"
        )) && line.ends_with("2 records lost to it (by the footer)"),
        "{line}"
    );

    let out = info(&["--skip-damaged".as_ref(), path.as_os_str()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("every intact frame was read"), "{text}");
    // Without the option the report says where reading stopped and how to
    // go on.
    let out = info(&[path.as_os_str()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("nothing after it was read (--skip-damaged reads on"),
        "{text}"
    );
}

/// A closed log without recorder losses: 16 records in a first frame, 4 in
/// a second, stopped by SIGTERM.
fn write_lossless_log(dir: &Path) -> PathBuf {
    let path = dir.join("lossless.log");
    let mut w = LogWriter::create(&path, &header()).unwrap();
    let d = [0x45u8; 40];
    for (i, n) in [16u64, 4].into_iter().enumerate() {
        for k in 0..n {
            let ts = T + 100 * i as u64 + k;
            w.append(&rec(ts, 3, Hook::PRE_ROUTING, Family::IPV4, 17, &d, 40))
                .unwrap();
        }
        w.commit().unwrap();
    }
    w.set_stop(StopReason::new(StopCause::Signal, "SIGTERM"));
    w.finish(T + 5000).unwrap();
    path
}

/// Flips a byte in the payload of the first frame; returns its offset.
fn damage_first_frame(path: &Path) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let first = header_len(&bytes);
    bytes[first + 20] ^= 0x5a;
    std::fs::write(path, &bytes).unwrap();
    first
}

fn text_of(args: &[&std::ffi::OsStr]) -> String {
    let out = info(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Records lost in skipped damage are losses: the losses line and the
/// JSON's `losses` count them, even when the recorder lost nothing.
#[test]
fn skipped_damage_counts_as_losses() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_lossless_log(dir.path());
    damage_first_frame(&path);
    let skip = "--skip-damaged".as_ref();

    let text = text_of(&[skip, path.as_os_str()]);
    assert!(
        text.contains("losses      16 records lost (lost_to_damage 16)\n"),
        "{text}"
    );
    let out = info(&["--json".as_ref(), skip, path.as_os_str()]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["records"], 4);
    assert_eq!(v["integrity"]["lost_to_damage"], 16);
    assert_eq!(v["losses"]["lost_to_damage"], 16);
    assert_eq!(v["losses"]["records_lost"], 16);

    // Alongside the recorder's own losses, in one total.
    let path = write_log(dir.path(), true);
    damage_first_frame(&path);
    let text = text_of(&[skip, path.as_os_str()]);
    assert!(
        text.contains(
            "losses      8 records lost (kernel_nomem 2, gap_records 4, lost_to_damage 2; \
             gap_batches 1, socket_errors 1)\n"
        ),
        "{text}"
    );
    // Not skipping, nothing is lost to damage: what follows it is unread
    // (here the recorder's loss frames too).
    let v = json_of(&path);
    assert_eq!(v["losses"]["lost_to_damage"], 0);
    assert_eq!(v["losses"]["records_lost"], 0);
}

/// A closed log damaged before its intact footer: reading that stops at
/// the damage does not reach the footer and says so (not "no footer");
/// skipping the damage reads the footer and reports the log closed, with
/// its stop reason.
#[test]
fn footer_after_damage_is_not_reported_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_lossless_log(dir.path());
    let first = damage_first_frame(&path);

    let text = text_of(&[path.as_os_str()]);
    assert!(
        text.contains(&format!(
            "ended       unknown: reading stopped at the damage at byte {first}, before the \
             footer (the header says the log was closed; --skip-damaged reads on to it)\n"
        )),
        "{text}"
    );
    assert!(!text.contains("no footer"), "{text}");
    let v = json_of(&path);
    assert_eq!(v["integrity"]["closed"], Value::Null);
    assert_eq!(v["integrity"]["footer"], "not_reached");
    assert_eq!(v["stop"], Value::Null);

    let skip = "--skip-damaged".as_ref();
    let text = text_of(&[skip, path.as_os_str()]);
    assert!(text.contains("ended       stopped by SIGTERM\n"), "{text}");
    let out = info(&["--json".as_ref(), skip, path.as_os_str()]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["integrity"]["closed"], true);
    assert_eq!(v["integrity"]["footer"], "read");
    assert_eq!(
        v["stop"],
        json!({"cause": "signal", "code": 1, "detail": "SIGTERM"})
    );
}

/// The footer's state where it is known without it: a log the recorder
/// never closed has none, even when reading stops at damage; a closed log
/// whose footer was in the skipped damage lost it.
#[test]
fn footer_absent_or_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), false);
    damage_first_frame(&path);
    let v = json_of(&path);
    assert_eq!(v["integrity"]["closed"], false);
    assert_eq!(v["integrity"]["footer"], "absent");
    assert!(text_of(&[path.as_os_str()]).contains("ended       - (no footer)\n"));

    // Damage the footer itself (its last payload byte) and skip it.
    let path = write_lossless_log(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x5a;
    std::fs::write(&path, &bytes).unwrap();
    let skip = "--skip-damaged".as_ref();
    let out = info(&["--json".as_ref(), skip, path.as_os_str()]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["records"], 20);
    assert_eq!(v["integrity"]["closed"], Value::Null);
    assert_eq!(v["integrity"]["footer"], "lost");
    assert_eq!(v["integrity"]["lost_to_damage"], Value::Null);
    assert_eq!(v["losses"].get("lost_to_damage"), None, "unknown: left out");
    let text = text_of(&[skip, path.as_os_str()]);
    for needle in [
        "losses      an unknown number of records lost to damage (the footer, which counts \
         them, was not found)\n",
        "ended       unknown: the log was closed, but its footer was not found (it was in the \
         skipped damage)\n",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
}

/// Fragmented UDP over IPv6 as the NFLOG source records it: the messages
/// are decoded as imp2-record decodes them, and the summary counts both
/// fragments under udp: the first (fragment header, then UDP) and the
/// later one, which carries no UDP header but whose fragment header says
/// UDP (it counted as protocol `44`, the fragment header, before).
#[test]
fn fragmented_ipv6_udp_from_nflog_counts_as_udp() {
    use imp2_format::nflog::{NflogMessage, NflogWalker, PacketMessage, consts};
    // IPv6 fd00:199::1 -> fd00:199::2, next header 44 (Fragment).
    let mut first = vec![0x60, 0, 0, 0, 0x05, 0xa8, 44, 64];
    first.extend_from_slice(&[0xfd, 0x00, 0x01, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    first.extend_from_slice(&[0xfd, 0x00, 0x01, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    let mut later = first.clone();
    // Fragment header: next header UDP, offset 0, more fragments; then the
    // UDP header (9999 -> 9999, length 3008) and data.
    first.extend_from_slice(&[17, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]);
    first.extend_from_slice(&[0x27, 0x0f, 0x27, 0x0f, 0x0b, 0xc0, 0x12, 0x34]);
    first.resize(40 + 1448, 0xab);
    // The next fragment: offset 1440 (0x05a0 = 180 << 3), data only.
    later.extend_from_slice(&[17, 0, 0x05, 0xa0, 0xde, 0xad, 0xbe, 0xef]);
    later.resize(40 + 1448, 0xab);
    let mut datagram = Vec::new();
    for payload in [&first, &later] {
        PacketMessage {
            family: consts::AF_INET6,
            group: 5,
            hw_protocol: 0x86dd,
            hook: 1,
            indev: Some(3),
            payload: Some(payload),
            ..PacketMessage::default()
        }
        .emit(&mut datagram);
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frag.log");
    let mut w = LogWriter::create(&path, &header()).unwrap();
    for item in NflogWalker::new(&datagram) {
        let NflogMessage::Packet(p) = item.unwrap().message else {
            panic!("a packet message expected");
        };
        w.append(&p.logged().record.unwrap()).unwrap();
    }
    w.finish(T).unwrap();

    let v = json_of(&path);
    assert_eq!(v["protocols"], json!({"udp": 2}));
    let text = text_of(&[path.as_os_str()]);
    assert!(text.contains("protocols   udp 2\n"), "{text}");
}

//! imp2-convert's failures: one clear line on stderr and the right exit
//! code; a damaged log is converted up to the damage.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use imp2_format::log::{Interface, LogHeader, LogWriter};
use imp2_format::{Family, Hook, PacketRecord};
use imp2_testkit::SmallTmpfs;

const CONVERT: &str = env!("CARGO_BIN_EXE_imp2-convert");
const RECORDS: u64 = 150;

/// A closed log of 150 IPv4/UDP records in 3 frames of 50.
fn write_log(dir: &Path) -> PathBuf {
    write_log_of(dir, RECORDS)
}

/// A closed log of `records` 48-byte IPv4/UDP records in frames of 50.
fn write_log_of(dir: &Path, records: u64) -> PathBuf {
    let path = dir.join("run.log");
    let header = LogHeader {
        snaplen: 256,
        source: "test".into(),
        hostname: "h".into(),
        kernel_release: "6.1.0".into(),
        tsresol_digits: 9,
        created_ns: 1_700_000_000_000_000_000,
        interfaces: vec![Interface {
            ifindex: 2,
            name: "eth0".into(),
        }],
    };
    let mut w = LogWriter::create(&path, &header).unwrap();
    let mut data = vec![0u8; 48];
    data[0] = 0x45;
    data[3] = 48;
    data[9] = 17;
    for i in 0..records {
        data[47] = i as u8;
        w.append(&PacketRecord {
            tstamp_ns: 1_700_000_000_000_000_000 + i * 1_000_003,
            ifindex: 2,
            orig_len: 48,
            hook: Hook::PRE_ROUTING,
            family: Family::IPV4,
            protocol: 17,
            data: &data,
        })
        .unwrap();
        if i % 50 == 49 {
            w.commit().unwrap();
        }
    }
    w.finish(1_700_000_001_000_000_000).unwrap();
    path
}

fn convert(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(CONVERT).args(args).output().unwrap()
}

/// Exactly one line on stderr, starting with the tool's name, no panic and
/// no Debug formatting.
fn one_line(out: &Output) -> String {
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.starts_with("imp2-convert: "), "{stderr:?}");
    for bad in ["panicked", "RUST_BACKTRACE", "Kind", "{", "Os {"] {
        assert!(!stderr.contains(bad), "{bad:?} in {stderr:?}");
    }
    stderr.trim_end().to_string()
}

#[test]
fn missing_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("nope.log");
    let out_file = dir.path().join("out.pcapng");
    let out = convert(&[log.as_os_str(), "-o".as_ref(), out_file.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_line(&out);
    assert_eq!(
        line,
        format!("imp2-convert: {}: No such file or directory", log.display())
    );
    assert!(
        !out_file.exists(),
        "no output for a log that cannot be read"
    );
}

#[test]
fn not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("notes.txt");
    std::fs::write(
        &log,
        "these are not the packets you are looking for\n".repeat(50),
    )
    .unwrap();
    let out_file = dir.path().join("out.pcap");
    let out = convert(&[log.as_os_str(), "-o".as_ref(), out_file.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_line(&out);
    assert!(line.contains("not an imp2 log"), "{line}");
    assert!(!out_file.exists());
}

#[test]
fn empty_file_is_not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("empty.log");
    std::fs::write(&log, b"").unwrap();
    let out_file = dir.path().join("out.pcapng");
    let out = convert(&[log.as_os_str(), "-o".as_ref(), out_file.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_line(&out),
        format!(
            "imp2-convert: {}: is an empty file, not an imp2 log",
            log.display()
        )
    );
    assert!(!out_file.exists());
}

/// A capture given where the log should be is named for what it is.
#[test]
fn capture_is_not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    // pcap, ns (magic 0xa1b23c4d little-endian), version 2.4: what
    // imp2-convert -f pcap writes; and a pcapng SHB (block type 0x0a0d0d0a,
    // length 28, byte-order magic 0x1a2b3c4d).
    let pcap = [0x4d, 0x3c, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00];
    let pcapng = [
        0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a,
    ];
    for (name, bytes, what) in [
        ("in.pcap", &pcap[..], "pcap"),
        ("in.pcapng", &pcapng[..], "pcapng"),
    ] {
        let log = dir.path().join(name);
        std::fs::write(&log, bytes).unwrap();
        let out_file = dir.path().join("out.pcapng");
        let out = convert(&[log.as_os_str(), "-o".as_ref(), out_file.as_os_str()]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            one_line(&out),
            format!(
                "imp2-convert: {}: is a {what} file, not an imp2 log (already a capture: open it \
                 with Wireshark, tshark or tcpdump -r)",
                log.display()
            )
        );
        assert!(!out_file.exists());
    }
}

#[test]
fn format_other_than_the_extension_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let out_file = dir.path().join("y.pcap");
    let out = convert(&[
        log.as_os_str(),
        "-o".as_ref(),
        out_file.as_os_str(),
        "-f".as_ref(),
        "pcapng".as_ref(),
    ]);
    assert!(out.status.success());
    assert_eq!(
        one_line(&out),
        format!(
            "imp2-convert: warning: {}: writing pcapng as --format says, but the extension \
             says pcap",
            out_file.display()
        )
    );
    // Written as asked.
    assert_eq!(
        &std::fs::read(&out_file).unwrap()[..4],
        &[0x0a, 0x0d, 0x0d, 0x0a]
    );
    // No warning when they agree.
    let out_file = dir.path().join("y.pcapng");
    let out = convert(&[
        log.as_os_str(),
        "-o".as_ref(),
        out_file.as_os_str(),
        "-f".as_ref(),
        "pcapng".as_ref(),
    ]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn directory_is_not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.pcapng");
    let out = convert(&[dir.path().as_os_str(), "-o".as_ref(), out_file.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_line(&out).contains("is a directory"));
}

#[test]
fn unknown_extension_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let out_file = dir.path().join("out.cap");
    let out = convert(&[log.as_os_str(), "-o".as_ref(), out_file.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let line = one_line(&out);
    assert!(line.contains("--format"), "{line}");
    assert!(!out_file.exists());

    // --format settles it.
    let out = convert(&[
        log.as_os_str(),
        "-o".as_ref(),
        out_file.as_os_str(),
        "--format".as_ref(),
        "pcapng".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        &std::fs::read(&out_file).unwrap()[..4],
        &[0x0a, 0x0d, 0x0d, 0x0a]
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = convert(&[]);
    assert_eq!(out.status.code(), Some(2));
    let out = convert(&[
        "x.log".as_ref(),
        "-o".as_ref(),
        "y.pcap".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn output_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let out_file = dir.path().join("no/such/dir/out.pcapng");
    let out = convert(&[log.as_os_str(), "-o".as_ref(), out_file.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_line(&out),
        format!(
            "imp2-convert: {}: cannot create: No such file or directory",
            out_file.display()
        )
    );
}

#[test]
fn refuses_to_overwrite_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let before = std::fs::read(&log).unwrap();
    let out = convert(&[
        log.as_os_str(),
        "-o".as_ref(),
        log.as_os_str(),
        "--format".as_ref(),
        "pcap".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(one_line(&out).contains("the log itself"));
    assert_eq!(std::fs::read(&log).unwrap(), before);
}

/// Number of packets tshark finds in `file`. tshark is required: its
/// absence fails the test and says how to get it.
fn tshark_count(file: &Path) -> usize {
    let out = match Command::new("tshark").arg("-r").arg(file).output() {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run tshark ({e}): it is required to check the exported files. Run the \
             test setup script that installs the test dependencies (in CI it runs \
             `DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
             tshark`), then run the tests again."
        ),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Packets in a pcapng (counting EPBs with a small block walker).
fn count_epbs(b: &[u8]) -> u64 {
    let mut n = 0;
    let mut at = 0;
    while at + 8 <= b.len() {
        let ty = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
        assert!(len >= 12 && at + len <= b.len(), "block at {at}");
        n += u64::from(ty == 6);
        at += len;
    }
    assert_eq!(at, b.len(), "the output ends with a whole block");
    n
}

/// Parses `...; wrote K packets before it`.
fn packets_before(line: &str) -> u64 {
    let tail = line
        .rsplit_once("; wrote ")
        .unwrap_or_else(|| panic!("{line}"))
        .1;
    tail.split_once(" packets before it")
        .unwrap_or_else(|| panic!("{line}"))
        .0
        .parse()
        .unwrap()
}

#[test]
fn damaged_frame_converts_what_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let mut bytes = std::fs::read(&log).unwrap();
    // Flip a byte two thirds into the file: inside the second or third
    // frame of records.
    let at = bytes.len() * 2 / 3;
    bytes[at] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();

    for (name, pcapng) in [("out.pcapng", true), ("out.pcap", false)] {
        let out_file = dir.path().join(name);
        let out = convert(&[log.as_os_str(), "-o".as_ref(), out_file.as_os_str()]);
        assert_eq!(out.status.code(), Some(1));
        // One line for pcap too: the run lost nothing, so there is no note
        // about what classic pcap cannot carry.
        let line = one_line(&out);
        let prefix = format!("imp2-convert: {}: ", log.display());
        assert!(line.starts_with(&prefix), "{line}");
        assert!(line.contains(" at byte "), "{line}");
        assert!(
            line.ends_with("(--skip-damaged converts the intact frames after it too)"),
            "{line}"
        );
        let k = packets_before(&line);
        assert!(k > 0 && k < RECORDS && k % 50 == 0, "{line}");
        let written = std::fs::read(&out_file).unwrap();
        if pcapng {
            assert_eq!(count_epbs(&written), k);
        } else {
            // Header, then per packet a record header, the SLL2 header
            // and 48 bytes of IP.
            assert_eq!(written.len() as u64, 24 + k * (16 + 20 + 48));
        }
        assert_eq!(
            tshark_count(&out_file) as u64,
            k,
            "tshark reads the valid part"
        );
    }
}

/// With --skip-damaged the frames after a damaged one are converted too:
/// only the damaged frame's 50 packets are missing, the warnings say where
/// and how many, the pcapng's `any` interface notes it, and the exit status
/// is 0.
#[test]
fn skip_damaged_converts_every_intact_frame() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let mut bytes = std::fs::read(&log).unwrap();
    // Inside the second of the three RECORDS frames (each about a third of
    // the frames' bytes; the header is 4096 bytes).
    let frames_len = bytes.len() - 4096;
    let at = 4096 + frames_len / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();

    let out_file = dir.path().join("out.pcapng");
    let out = convert(&[
        log.as_os_str(),
        "-o".as_ref(),
        out_file.as_os_str(),
        "--skip-damaged".as_ref(),
    ]);
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    let prefix = format!("imp2-convert: warning: {}: ", log.display());
    assert!(
        lines[0].starts_with(&format!("{prefix}skipped ")),
        "{stderr}"
    );
    assert!(lines[0].contains(" damaged bytes at byte "), "{stderr}");
    assert!(lines[0].contains("checksum mismatch"), "{stderr}");
    assert!(
        lines[1].starts_with(&prefix)
            && lines[1].contains(
                " in 1 place; 50 packets were in them (by the log's footer); wrote 100 packets"
            ),
        "{stderr}"
    );
    let written = std::fs::read(&out_file).unwrap();
    assert_eq!(count_epbs(&written), RECORDS - 50);
    assert_eq!(tshark_count(&out_file), (RECORDS - 50) as usize);
    // The note is in the file: an ISB comment of the `any` interface.
    let text = String::from_utf8_lossy(&written);
    assert!(text.contains("any"), "no `any` IDB");
    assert!(
        text.contains("log damaged: ") && text.contains("50 packets in them are missing"),
        "no damage note in the pcapng"
    );

    // Without the option: the first 50, exit 1 (as before).
    let out = convert(&[log.as_os_str(), "-o".as_ref(), out_file.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(packets_before(&one_line(&out)), 50);
}

/// --sync asks for an fsync; a pipe or a character device has nothing to
/// flush, and the conversion to one succeeds instead of failing on EINVAL.
#[test]
fn sync_to_a_character_device_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let out = convert(&[
        log.as_os_str(),
        "-o".as_ref(),
        "/dev/null".as_ref(),
        "-f".as_ref(),
        "pcapng".as_ref(),
        "--sync".as_ref(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And a regular file is still synced without complaint.
    let out_file = dir.path().join("out.pcap");
    let out = convert(&[
        log.as_os_str(),
        "-o".as_ref(),
        out_file.as_os_str(),
        "--sync".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(0));
}

/// A log cut below its committed length (copied while recording, say):
/// the frames wholly before the cut are converted, then exit 1.
#[test]
fn truncated_log_converts_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let len = std::fs::metadata(&log).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(len * 2 / 3).unwrap();
    drop(f);
    let out_file = dir.path().join("out.pcapng");
    let out = convert(&[log.as_os_str(), "-o".as_ref(), out_file.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_line(&out);
    let prefix = format!(
        "imp2-convert: {}: torn tail (file cut to {} bytes of {len} committed) at byte ",
        log.display(),
        len * 2 / 3
    );
    assert!(line.starts_with(&prefix), "{line}");
    let k = packets_before(&line);
    assert!(k > 0 && k < RECORDS && k % 50 == 0, "{line}");
    assert_eq!(count_epbs(&std::fs::read(&out_file).unwrap()), k);
}

/// A log from a newer major format version is refused, not misread.
#[test]
fn newer_format_version() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes()); // major (FORMAT.md §3)
    bytes[10..12].copy_from_slice(&3u16.to_le_bytes()); // minor
    std::fs::write(&log, &bytes).unwrap();
    let out_file = dir.path().join("out.pcapng");
    let out = convert(&[log.as_os_str(), "-o".as_ref(), out_file.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_line(&out);
    assert!(line.contains("format version 2.3"), "{line}");
    assert!(!out_file.exists());
}

// ---------------------------------------------------------------------------
// After a write error, only the regular file this run created is removed:
// never a device, a FIFO or a symbolic link that `-o` names.

/// Fails (never skips): these tests need root to make a device node and
/// mount a file system, as the suite's other root-only tests do.
fn require_root(what: &str) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test needs root ({what})");
}

/// A character device node with /dev/full's numbers (1, 7) at `path`:
/// every write to it fails with ENOSPC.
fn make_dev_full(path: &Path) {
    require_root("mknod");
    let status = Command::new("mknod")
        .arg(path)
        .args(["c", "1", "7"])
        .status()
        .expect("run mknod");
    assert!(status.success(), "mknod {} c 1 7 failed", path.display());
}

fn is_char_device(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

#[test]
fn full_device_is_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let full = dir.path().join("full");
    make_dev_full(&full);
    let out = convert(&[
        log.as_os_str(),
        "-o".as_ref(),
        full.as_os_str(),
        "-f".as_ref(),
        "pcapng".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    // Nothing about a partial output: a device holds none.
    assert_eq!(
        one_line(&out),
        format!("imp2-convert: {}: No space left on device", full.display())
    );
    assert!(is_char_device(&full), "the device node was removed");
}

#[test]
fn symlink_to_full_device_is_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let full = dir.path().join("full");
    make_dev_full(&full);
    let link = dir.path().join("link.pcapng");
    std::os::unix::fs::symlink(&full, &link).unwrap();
    let out = convert(&[log.as_os_str(), "-o".as_ref(), link.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_line(&out),
        format!("imp2-convert: {}: No space left on device", link.display())
    );
    assert!(
        std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()),
        "the symbolic link was removed"
    );
    assert!(is_char_device(&full), "the device node was removed");
}

/// 40 000 records: about 3 MB of pcapng, three times what fits.
const TOO_BIG: u64 = 40_000;

#[test]
fn partial_regular_file_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log_of(dir.path(), TOO_BIG);
    require_root("mount");
    let fs = SmallTmpfs::for_test("1m");
    let out_file = fs.path().join("out.pcapng");
    let out = convert(&[log.as_os_str(), "-o".as_ref(), out_file.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_line(&out),
        format!(
            "imp2-convert: {}: No space left on device; removed the partial output",
            out_file.display()
        )
    );
    assert!(!out_file.exists());
}

#[test]
fn symlink_to_a_full_file_system_is_kept_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log_of(dir.path(), TOO_BIG);
    require_root("mount");
    let fs = SmallTmpfs::for_test("1m");
    let target = fs.path().join("out.pcapng");
    let link = dir.path().join("link.pcapng");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = convert(&[log.as_os_str(), "-o".as_ref(), link.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_line(&out),
        format!(
            "imp2-convert: {}: No space left on device; the partial output was left in place: \
             {} is a symbolic link (to {})",
            link.display(),
            link.display(),
            target.display()
        )
    );
    assert!(
        std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()),
        "the symbolic link was removed"
    );
    // The partial data is where the message says.
    let partial = std::fs::metadata(&target).unwrap();
    assert!(partial.is_file() && partial.len() > 0, "{partial:?}");
}

/// The reader of a FIFO output goes away early: Broken pipe, and the FIFO
/// stays (it is the reader's, not a partial file).
#[test]
fn fifo_is_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    // More than a pipe holds (64 KiB), so that the writer must wait for
    // the reader, and finds it gone.
    let log = write_log_of(dir.path(), 5_000);
    let fifo = dir.path().join("out.pcapng");
    let status = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(status.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            // Opening waits for imp2-convert to open its end.
            let mut f = std::fs::File::open(&fifo).unwrap();
            let mut head = [0u8; 4];
            f.read_exact(&mut head).unwrap();
            head
        })
    };
    let out = convert(&[log.as_os_str(), "-o".as_ref(), fifo.as_os_str()]);
    // Checked before joining: had imp2-convert failed before opening the
    // FIFO, the reader would still be waiting in open.
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_line(&out),
        format!("imp2-convert: {}: Broken pipe", fifo.display())
    );
    assert_eq!(reader.join().unwrap(), [0x0a, 0x0d, 0x0d, 0x0a]);
    assert!(
        std::fs::symlink_metadata(&fifo).is_ok_and(|m| m.file_type().is_fifo()),
        "the FIFO was removed"
    );
}

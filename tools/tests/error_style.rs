//! One error style for imp2-convert and imp2-info: one line on stderr,
//! `TOOL: what: why`, the OS reason in words (no `(os error N)`), clap's
//! usage errors folded into that line, and with `--json` a JSON object with
//! the error on stdout.

use std::process::{Command, Output};

const CONVERT: &str = env!("CARGO_BIN_EXE_imp2-convert");
const INFO: &str = env!("CARGO_BIN_EXE_imp2-info");

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().expect("tool runs")
}

/// Exactly `TOOL: line` on stderr, exit `code`.
fn assert_line(out: &Output, code: i32, tool: &str, line: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr, format!("{tool}: {line}\n"));
}

#[test]
fn special_files_are_named_not_called_bad_magic() {
    assert_line(
        &run(INFO, &["/dev/null"]),
        1,
        "imp2-info",
        "/dev/null: is a character device, not an imp2 log (a log is a regular file)",
    );
    assert_line(
        &run(CONVERT, &["/dev/null", "-o", "/dev/null", "-f", "pcapng"]),
        1,
        "imp2-convert",
        "/dev/null: is a character device, not an imp2 log (a log is a regular file)",
    );
}

#[test]
fn os_reasons_come_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.log");
    let missing = missing.to_str().unwrap();
    assert_line(
        &run(INFO, &[missing]),
        1,
        "imp2-info",
        &format!("{missing}: No such file or directory"),
    );
}

#[test]
fn usage_errors_are_one_line_without_clap_decoration() {
    assert_line(
        &run(CONVERT, &["x.log"]),
        2,
        "imp2-convert",
        "the following required arguments were not provided: --output <OUT>",
    );
    let out = run(INFO, &["x.log", "--frob"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.starts_with("imp2-info: unexpected argument '--frob' found"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        !stderr.contains("error:") && !stderr.contains("Usage"),
        "{stderr}"
    );
}

/// `imp2-info --json` prints a JSON object also when it fails: at the
/// command line (exit 2) or on the log (exit 1).
#[test]
fn with_json_a_failure_is_a_json_object() {
    for (args, code) in [
        (&["--json", "/dev/null"][..], 1),
        (&["--json", "x.log", "--frob"][..], 2),
    ] {
        let out = run(INFO, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {:?}", out.stdout));
        assert_eq!(v["exit_code"], code);
        assert_eq!(
            format!("imp2-info: {}\n", v["error"].as_str().unwrap()),
            stderr
        );
    }
}

/// Classic pcap was asked for by name: no note about what it lacks, except
/// the one thing a user may not know it drops, the run's losses, said once.
#[test]
fn the_pcap_note_is_said_once_and_only_for_losses() {
    use imp2_format::log::{Interface, LogHeader, LogWriter, Losses};
    use imp2_format::{Family, Hook, PacketRecord};
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, lost: u64| {
        let path = dir.path().join(name);
        let header = LogHeader {
            snaplen: 256,
            tsresol_digits: 9,
            created_ns: 1_700_000_000_000_000_000,
            interfaces: vec![Interface {
                ifindex: 1,
                name: "lo".into(),
            }],
            ..LogHeader::default()
        };
        let mut w = LogWriter::create(&path, &header).unwrap();
        let mut data = [0u8; 28];
        data[0] = 0x45;
        data[3] = 28;
        data[9] = 17;
        w.append(&PacketRecord {
            tstamp_ns: 1_700_000_000_000_000_001,
            ifindex: 1,
            orig_len: 28,
            hook: Hook::PRE_ROUTING,
            family: Family::IPV4,
            protocol: 17,
            data: &data,
        })
        .unwrap();
        let losses = Losses {
            gap_records: lost,
            ..Losses::default()
        };
        w.finish_with_losses(&losses, 1_700_000_001_000_000_000)
            .unwrap();
        path
    };
    let clean = write("clean.log", 0);
    let lossy = write("lossy.log", 7);
    for (log, out, note) in [
        (&clean, "a.pcap", None),
        (&lossy, "b.pcapng", None),
        (
            &lossy,
            "c.pcap",
            Some(
                "imp2-convert: note: classic pcap has no place for the 7 packets this recording \
                 lost (`imp2-info` lists them; pcapng keeps them in its interface statistics)\n",
            ),
        ),
    ] {
        let out = dir.path().join(out);
        let o = run(
            CONVERT,
            &[log.to_str().unwrap(), "-o", out.to_str().unwrap()],
        );
        assert!(o.status.success(), "{o:?}");
        assert_eq!(String::from_utf8_lossy(&o.stderr), note.unwrap_or(""));
    }
}

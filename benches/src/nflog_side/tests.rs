use super::*;

/// The reference reader compiles warning-free (`-Wall -Wextra
/// -Werror`), so the benchmark's reference row cannot rot unseen.
#[test]
fn reference_reader_builds() {
    let dir = std::env::temp_dir().join(format!("imp2-c-reader-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let built = build_c_reader(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let exe = built.unwrap();
    assert!(exe.ends_with("nflog-pcap"));
}

fn udp_frame() -> Vec<u8> {
    let mut f = vec![0u8; 14];
    f[12] = 0x08;
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[9] = 17;
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x30, 0x39]);
    f.extend_from_slice(&PORT.to_be_bytes());
    f.extend_from_slice(&[0u8; 4 + 64]);
    f
}

#[test]
fn pcap_and_pcapng_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let frame = udp_frame();
    // pcap, little endian, Ethernet: two flood packets and an ARP.
    let mut p = Vec::new();
    p.extend_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
    p.extend_from_slice(&[0u8; 8]);
    p.extend_from_slice(&65535u32.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    let mut arp = frame.clone();
    arp[12] = 0x08;
    arp[13] = 0x06;
    for f in [&frame, &arp, &frame] {
        p.extend_from_slice(&[0u8; 8]);
        p.extend_from_slice(&(f.len() as u32).to_le_bytes());
        p.extend_from_slice(&(f.len() as u32).to_le_bytes());
        p.extend_from_slice(f);
    }
    let pcap = dir.path().join("a.pcap");
    std::fs::write(&pcap, &p).unwrap();
    assert_eq!(count_capture(&pcap).unwrap(), Count { total: 3, flood: 2 });

    // pcapng: SHB, IDB (Ethernet), two EPBs, one with padding.
    let mut g = Vec::new();
    let block = |g: &mut Vec<u8>, t: u32, body: &[u8]| {
        let len = 12 + body.len().div_ceil(4) * 4;
        g.extend_from_slice(&t.to_le_bytes());
        g.extend_from_slice(&(len as u32).to_le_bytes());
        g.extend_from_slice(body);
        g.resize(g.len() + (4 - body.len() % 4) % 4, 0);
        g.extend_from_slice(&(len as u32).to_le_bytes());
    };
    let mut shb = vec![0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0];
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    block(&mut g, 0x0a0d_0d0a, &shb);
    block(&mut g, 1, &[1, 0, 0, 0, 0xff, 0xff, 0, 0]);
    for f in [&frame, &arp] {
        let mut epb = vec![0u8; 12];
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(f);
        block(&mut g, 6, &epb);
    }
    let ng = dir.path().join("a.pcapng");
    std::fs::write(&ng, &g).unwrap();
    assert_eq!(count_capture(&ng).unwrap(), Count { total: 2, flood: 1 });
}

#[test]
fn raw_ip_is_recognised() {
    let f = udp_frame();
    assert!(is_flood(101, &f[14..]));
    assert!(is_flood(228, &f[14..]));
    assert!(!is_flood(1, &f[..20]));
}

#[test]
fn missing_tools_give_reasons_not_numbers() {
    let side = NflogSide {
        quick: true,
        rounds: 2,
        rounds_done: 0,
        packets: 1,
        setup_error: Some("needs root".into()),
        baseline_pps: M::default(),
        caps: Vec::new(),
        notes: Vec::new(),
        load: (String::new(), String::new()),
        took: Duration::ZERO,
        dir: PathBuf::from("/tmp"),
        hot: Default::default(),
    };
    let rows = target_rows(&side);
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r.3.is_none() && r.1.contains("needs root"))
    );
    assert!(render(&side).contains("not measured: needs root"));
}

/// A quick run of three complete rounds with these capturers' figures.
fn three_rounds(caps: Vec<CapStats>) -> NflogSide {
    NflogSide {
        quick: true,
        rounds: 3,
        rounds_done: 3,
        packets: 10,
        setup_error: None,
        baseline_pps: M::default(),
        caps,
        notes: Vec::new(),
        load: (String::new(), String::new()),
        took: Duration::ZERO,
        dir: PathBuf::from("/tmp"),
        hot: Default::default(),
    }
}

#[test]
fn an_unavailable_tool_gets_a_reason_row() {
    let mut imp2 = CapStats::new(Capturer::Imp2, Ok("imp2-record 0.1.0".into()), "x".into());
    for (ratio, ns, kept) in [(1.0, 140.0, 0.8), (1.0, 160.0, 0.7), (1.0, 120.0, 0.75)] {
        imp2.ratio.push(ratio);
        imp2.ns.push(ns);
        imp2.kept.push(kept);
    }
    let ulogd = CapStats::new(
        Capturer::Ulogd,
        Err("`ulogd` not found: apt-get install ulogd2 ulogd2-pcap".into()),
        "y".into(),
    );
    // The verdicts are ratios to the bare C reader of the same rounds:
    // without it, no verdict on the CPU.
    let alone = target_rows(&three_rounds(vec![imp2.clone(), ulogd.clone()]));
    assert_eq!(alone[0].3, None);
    assert!(
        alone[0].1.contains("reference reader was not measured"),
        "{}",
        alone[0].1
    );
    let mut reader = CapStats::new(Capturer::CReader, Ok("nflog-pcap".into()), "z".into());
    for (ratio, ns, kept) in [(1.0, 150.0, 0.8), (1.0, 170.0, 0.7), (1.0, 130.0, 0.75)] {
        reader.ratio.push(ratio);
        reader.ns.push(ns);
        reader.kept.push(kept);
    }
    let side = three_rounds(vec![imp2, ulogd, reader]);
    let text = render(&side);
    assert!(text.contains(
        "| ulogd2 (NFLOG in, PCAP out) | not measured: `ulogd` not found: apt-get install \
         ulogd2 ulogd2-pcap | | | | |"
    ));
    assert!(text.contains("| 140 (120-160, n=3) |"), "{text}");
    let rows = target_rows(&side);
    assert_eq!(rows[0].3, Some(true));
    assert_eq!(rows[1].3, Some(true));
    assert_eq!(rows[2].3, Some(true));
    // 120-160 ns is a quiet run's spread.
    assert!(!text.contains("Host disturbed"), "{text}");
    assert!(rows.iter().all(|r| !r.1.contains("disturbed")));
}

#[test]
fn a_disturbed_run_says_so() {
    let mut imp2 = CapStats::new(Capturer::Imp2, Ok("imp2-record 0.1.0".into()), "x".into());
    let mut reader = CapStats::new(Capturer::CReader, Ok("nflog-pcap".into()), "y".into());
    for (ns, reader_ns) in [(240.0, 190.0), (260.0, 150.0), (250.0, 601.0)] {
        imp2.ratio.push(1.0);
        imp2.ns.push(ns);
        imp2.kept.push(0.8);
        reader.ratio.push(1.0);
        reader.ns.push(reader_ns);
    }
    let side = three_rounds(vec![imp2, reader]);
    let text = render(&side);
    assert!(
        text.contains(
            "**Host disturbed:** bare C NFLOG reader writing pcap (reference) cost 150-601 ns \
             per packet over the rounds (4.0x;"
        ),
        "{text}"
    );
    let rows = target_rows(&side);
    // Still judged as measured, with the caveat beside the figures.
    assert_eq!(rows[0].3, Some(false));
    assert!(
        rows[0]
            .1
            .ends_with("; host disturbed, see the NFLOG section")
    );
    assert!(
        rows[2]
            .1
            .ends_with("; host disturbed, see the NFLOG section")
    );
    assert!(
        !rows[1].1.contains("disturbed"),
        "capture counts do not drift"
    );
}

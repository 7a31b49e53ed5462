//! The classic-BPF checker and interpreter (`imp2_format::filter`): the
//! interpreter against libpcap's own `pcap_offline_filter` on thousands of
//! raw IP packets for each of 30 tcpdump expressions; the checker against
//! hostile programs; the kernel encoding in golden bytes.

use imp2_format::filter::bpf::{INSN_LEN, MAX_INSNS};
use imp2_format::filter::{BadProgram, CompileError, Insn, Program, compile};
use pcap::{Capture, Linktype};

/// Expressions that exercise every part of the compiler's output for raw
/// IP: protocols, addresses, nets, ports and ranges, IPv6 extension
/// headers, fragments, byte tests, lengths, arithmetic.
const EXPRESSIONS: &[&str] = &[
    "ip",
    "ip6",
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "host 10.0.0.1",
    "src host 10.0.0.2 and dst host 10.0.0.1",
    "net 10.0.0.0/30",
    "host fd00::1",
    "net fd00::/127",
    "port 53",
    "tcp port 443",
    "udp dst port 53",
    "portrange 1000-1100",
    "not port 22",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "ip6 and udp",
    "ip6 and tcp port 80",
    "len > 500",
    "less 100",
    "greater 1000",
    "ip[6:2] & 0x1fff != 0",
    "ip[8] < 64",
    "ip proto 47",
    "ip6 proto 58",
    "udp and (port 53 or port 123) and not host 10.0.0.3",
    "icmp[icmptype] == icmp-echo",
    "ip[2:2] * 2 > 200",
];

/// xorshift64*: the same packets on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// One raw IP packet: IPv4 (sometimes a fragment) or IPv6 (sometimes with a
/// hop-by-hop or fragment header), TCP/UDP/ICMP/ICMPv6/GRE or random bytes.
fn packet(r: &mut Rng) -> Vec<u8> {
    let ports = [22u16, 53, 80, 123, 443, 1000, 1050, 1100, 1101, 40000];
    let payload_len = r.pick(&[0usize, 8, 20, 64, 300, 600, 1200]);
    let proto = r.pick(&[6u8, 17, 1, 58, 47, 0, 44]);
    let mut l4 = Vec::new();
    match proto {
        6 => {
            l4.extend_from_slice(&r.pick(&ports).to_be_bytes());
            l4.extend_from_slice(&r.pick(&ports).to_be_bytes());
            l4.extend_from_slice(&[0; 8]);
            l4.push(0x50);
            l4.push(r.pick(&[0x02u8, 0x12, 0x10, 0x11, 0x04]));
            l4.extend_from_slice(&[0; 6]);
        }
        17 => {
            l4.extend_from_slice(&r.pick(&ports).to_be_bytes());
            l4.extend_from_slice(&r.pick(&ports).to_be_bytes());
            l4.extend_from_slice(&[0; 4]);
        }
        _ => {
            l4.push(r.pick(&[0u8, 8, 128, 129, 3]));
            l4.extend_from_slice(&[0; 7]);
        }
    }
    l4.extend((0..payload_len).map(|_| r.next() as u8));
    let mut p = Vec::new();
    if r.next() % 2 == 0 {
        let total = (20 + l4.len()) as u16;
        let frag: u16 = r.pick(&[0u16, 0x2000, 0x00b9, 0x4000]);
        let addrs = [
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            [10, 0, 0, 3],
            [192, 168, 1, 9],
        ];
        let proto4 = if proto == 58 || proto == 44 { 1 } else { proto };
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0, 1]);
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&[r.pick(&[1u8, 32, 63, 64, 200]), proto4, 0, 0]);
        p.extend_from_slice(&r.pick(&addrs));
        p.extend_from_slice(&r.pick(&addrs));
    } else {
        let mut a = [0u8; 16];
        a[0] = 0xfd;
        let addr = |last: u8| {
            let mut x = a;
            x[15] = last;
            x
        };
        let mut ext = Vec::new();
        let next = match proto {
            44 => {
                // fragment header, then UDP
                ext.extend_from_slice(&[17, 0]);
                ext.extend_from_slice(&r.pick(&[0u16, 1, 0x00b8]).to_be_bytes());
                ext.extend_from_slice(&[0, 0, 0, 7]);
                44
            }
            1 => 58,
            p => p,
        };
        let with_hbh = r.next() % 4 == 0;
        let first = if with_hbh { 0 } else { next };
        let plen = (ext.len() + l4.len() + if with_hbh { 8 } else { 0 }) as u16;
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        p.extend_from_slice(&plen.to_be_bytes());
        p.extend_from_slice(&[first, 64]);
        p.extend_from_slice(&addr(r.pick(&[1u8, 2, 3])));
        p.extend_from_slice(&addr(r.pick(&[1u8, 2, 3])));
        if with_hbh {
            p.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        p.extend_from_slice(&ext);
    }
    p.extend_from_slice(&l4);
    if r.next() % 16 == 0 {
        // a short or garbled packet: loads past the end must reject
        let cut = (r.next() % (p.len() as u64 + 1)) as usize;
        p.truncate(cut);
    }
    p
}

#[test]
fn interpreter_agrees_with_libpcap_on_every_expression() {
    let dead = Capture::dead(Linktype(12)).expect("pcap_open_dead");
    let mut r = Rng(0x1234_5678_9abc_def1);
    let packets: Vec<Vec<u8>> = (0..4000).map(|_| packet(&mut r)).collect();
    for expr in EXPRESSIONS {
        let ours = compile(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let theirs = dead.compile(expr, true).expect("libpcap compiles it");
        let mut matched = 0;
        for p in &packets {
            let a = ours.program.run(p, p.len() as u32) != 0;
            let b = theirs.filter(p);
            assert_eq!(a, b, "{expr} on {p:02x?}");
            matched += usize::from(a);
        }
        // Every expression selects some packets and leaves others: the
        // comparison says something.
        assert!(
            matched > 0 && matched < packets.len(),
            "{expr}: {matched} of {} matched",
            packets.len()
        );
    }
}

#[test]
fn wire_length_and_captured_bytes_are_apart() {
    let f = compile("len > 500").unwrap();
    let head = [
        0x45u8, 0, 0x03, 0xe8, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    // 20 bytes captured of a 1000-byte packet: `len` is the wire length.
    assert_ne!(f.program.run(&head, 1000), 0);
    assert_eq!(f.program.run(&head, 400), 0);
    // A load past the captured bytes rejects, as libpcap's bpf_filter does.
    let port = compile("udp port 53").unwrap();
    assert_eq!(port.program.run(&head, 1000), 0);
}

#[test]
fn accepting_returns_the_whole_packet() {
    let f = compile("ip").unwrap();
    let head = [
        0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    assert_eq!(f.program.run(&head, 70000), u32::MAX);
}

#[test]
fn bad_expressions_say_why() {
    match compile("udp port") {
        Err(CompileError::Syntax(m)) => assert!(m.contains("syntax error"), "{m}"),
        other => panic!("{other:?}"),
    }
    for link in ["ether host 1:2:3:4:5:6", "vlan", "mpls", "ifname eth0"] {
        match compile(link) {
            Err(e @ CompileError::LinkLayer(_)) => {
                assert!(e.to_string().contains("link-layer header"), "{e}")
            }
            other => panic!("{link}: {other:?}"),
        }
    }
}

const RET_K: u16 = 0x06;
const RET_0: Insn = Insn {
    code: RET_K,
    jt: 0,
    jf: 0,
    k: 0,
};

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

#[test]
fn hostile_programs_are_refused() {
    let cases: Vec<(Vec<Insn>, BadProgram)> = vec![
        (vec![], BadProgram::Empty),
        (
            vec![RET_0; MAX_INSNS + 1],
            BadProgram::TooLong(MAX_INSNS + 1),
        ),
        (
            vec![insn(0xffff, 0, 0, 0), RET_0],
            BadProgram::UnknownOpcode {
                at: 0,
                code: 0xffff,
            },
        ),
        // ret X is not classic BPF
        (
            vec![insn(0x0e, 0, 0, 0)],
            BadProgram::UnknownOpcode { at: 0, code: 0x0e },
        ),
        // ja +5 in a two-instruction program: past the end
        (
            vec![insn(0x05, 0, 0, 5), RET_0],
            BadProgram::JumpOut { at: 0 },
        ),
        // ja -1 (k wraps): a loop back, past the end once wrapped
        (
            vec![insn(0x05, 0, 0, u32::MAX), RET_0],
            BadProgram::JumpOut { at: 0 },
        ),
        // jeq #0 jt 1 from the last-but-one: past the end
        (
            vec![insn(0x15, 1, 0, 0), RET_0],
            BadProgram::JumpOut { at: 0 },
        ),
        // div #0, mod #0
        (
            vec![insn(0x34, 0, 0, 0), RET_0],
            BadProgram::DivideByZero { at: 0 },
        ),
        (
            vec![insn(0x94, 0, 0, 0), RET_0],
            BadProgram::DivideByZero { at: 0 },
        ),
        // lsh #32
        (
            vec![insn(0x64, 0, 0, 32), RET_0],
            BadProgram::ShiftTooFar { at: 0 },
        ),
        // st M[16]
        (
            vec![insn(0x02, 0, 0, 16), RET_0],
            BadProgram::MemoryIndex { at: 0, index: 16 },
        ),
        // ld M[3] before any st
        (
            vec![insn(0x60, 0, 0, 3), RET_0],
            BadProgram::UninitializedMemory { at: 0, index: 3 },
        ),
        // st M[3] on one branch only, then ld M[3] where both join
        (
            vec![
                insn(0x15, 0, 1, 0), // jeq #0, jt 0, jf 1
                insn(0x02, 0, 0, 3), // st M[3]
                insn(0x60, 0, 0, 3), // ld M[3]
                RET_0,
            ],
            BadProgram::UninitializedMemory { at: 2, index: 3 },
        ),
        // falls off the end
        (vec![insn(0x00, 0, 0, 1)], BadProgram::NoReturn),
    ];
    for (insns, want) in cases {
        assert_eq!(Program::new(insns.clone()), Err(want.clone()), "{insns:?}");
        assert!(!want.to_string().is_empty());
    }
    assert_eq!(Program::from_bytes(&[0u8; 12]), Err(BadProgram::Ragged(12)));
}

#[test]
fn runtime_faults_reject_instead_of_panicking() {
    // ldx #0; ld #7; div x; ret a: division by X = 0 ends with 0.
    let p = Program::new(vec![
        insn(0x01, 0, 0, 0),
        insn(0x00, 0, 0, 7),
        insn(0x3c, 0, 0, 0),
        insn(0x16, 0, 0, 0),
    ])
    .unwrap();
    assert_eq!(p.run(&[], 0), 0);
    // ld [0xffffffff]: a load at the end of the address space.
    let p = Program::new(vec![insn(0x20, 0, 0, u32::MAX), insn(0x16, 0, 0, 0)]).unwrap();
    assert_eq!(p.run(&[1, 2, 3, 4], 4), 0);
    // ldx #0xfffffffe; ld [x + 4] (h): the index wraps, out of range.
    let p = Program::new(vec![
        insn(0x01, 0, 0, 0xffff_fffe),
        insn(0x48, 0, 0, 4),
        insn(0x16, 0, 0, 0),
    ])
    .unwrap();
    assert_eq!(p.run(&[1, 2, 3, 4], 4), 0);
    // Scratch memory written on every path before the read is fine.
    let p = Program::new(vec![
        insn(0x00, 0, 0, 9),  // ld #9
        insn(0x02, 0, 0, 15), // st M[15]
        insn(0x15, 0, 1, 0),  // jeq #0
        insn(0x02, 0, 0, 15), // st M[15]
        insn(0x61, 0, 0, 15), // ldx M[15]
        insn(0x87, 0, 0, 0),  // txa
        insn(0x16, 0, 0, 0),  // ret a
    ])
    .unwrap();
    assert_eq!(p.run(&[], 0), 9);
}

#[test]
fn kernel_encoding_golden_bytes() {
    // `ldh [12]` / `jeq #0x800 jt 0 jf 3` / `ret #0xffff`, as
    // struct sock_filter on a little-endian host:
    let insns = [
        insn(0x28, 0, 0, 12),
        insn(0x15, 0, 3, 0x800),
        insn(0x06, 0, 0, 0xffff),
    ];
    let bytes: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
    #[rustfmt::skip]
    let want: [u8; 3 * INSN_LEN] = [
        0x28, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, // code 0x0028, jt 0, jf 0, k 12
        0x15, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00, 0x00, // code 0x0015, jt 0, jf 3, k 0x800
        0x06, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, // code 0x0006, k 0xffff
    ];
    if cfg!(target_endian = "little") {
        assert_eq!(bytes, want);
    }
    // jf 3 jumps past the end of this three-instruction program.
    assert_eq!(
        Program::from_bytes(&bytes),
        Err(BadProgram::JumpOut { at: 1 })
    );
    let ok: Vec<u8> = [insn(0x28, 0, 0, 12), insn(0x15, 0, 1, 0x800), RET_0, RET_0]
        .iter()
        .flat_map(|i| i.to_bytes())
        .collect();
    let p = Program::from_bytes(&ok).unwrap();
    assert_eq!(p.to_bytes(), ok);
    assert_eq!(p.insns()[1].to_string(), "21 0 1 2048");
}

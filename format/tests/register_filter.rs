//! The REGISTER filter extension: golden bytes, round trips, and every way
//! the module refuses one (checked here exactly as `imp2_filter_setup`).

use imp2_format::filter::{Insn, Program, compile};
use imp2_format::wire::abi;
use imp2_format::wire::{Config, ConfigError, Register, RegisterFilter};

fn ret(k: u32) -> Insn {
    Insn {
        code: 0x06,
        jt: 0,
        jf: 0,
        k,
    }
}

#[test]
fn extension_golden_bytes() {
    let filter = RegisterFilter {
        program: Some(Program::new(vec![ret(0xffff)]).unwrap()),
        ifindexes: vec![1, 7],
    };
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &1u32.to_ne_bytes()[..],    // struct imp2_filter: insn_count 1
        &2u32.to_ne_bytes()[..],    //                     ifindex_count 2
        &0x0006u16.to_ne_bytes()[..], &[0, 0][..], &0xffffu32.to_ne_bytes()[..], // ret #0xffff
        &1u32.to_ne_bytes()[..],    // ifindexes[0] = 1 (lo)
        &7u32.to_ne_bytes()[..],    // ifindexes[1] = 7
    ]
    .concat();
    assert_eq!(filter.to_bytes(), want);
    let register = Register::new(Config::default(), Some(filter.clone()));
    assert_eq!(register.config.flags, abi::CONFIG_F_FILTER);
    let bytes = register.to_bytes();
    assert_eq!(bytes.len(), abi::config::SIZE + want.len());
    assert_eq!(Register::parse(&bytes), Ok(register));
}

#[test]
fn a_register_without_the_flag_is_abi_1_as_before() {
    let plain = Register::new(Config::default(), None);
    let mut bytes = plain.to_bytes();
    assert_eq!(bytes.len(), abi::config::SIZE);
    // Trailing bytes without the flag are ignored, as they always were.
    bytes.extend_from_slice(&[0xee; 12]);
    assert_eq!(Register::parse(&bytes).unwrap().filter, None);
    // A compiled expression round-trips.
    let f = compile("udp port 53").unwrap();
    let register = Register::new(
        Config::default(),
        Some(RegisterFilter {
            program: Some(f.program.clone()),
            ifindexes: vec![],
        }),
    );
    let back = Register::parse(&register.to_bytes()).unwrap();
    assert_eq!(back.filter.unwrap().program.unwrap(), f.program);
}

#[test]
fn malformed_extensions_are_refused_as_the_module_refuses_them() {
    let config = Register::new(Config::default(), Some(RegisterFilter::default()))
        .config
        .to_bytes()
        .to_vec();
    let with = |ext: &[u8]| [&config[..], ext].concat();
    let counts = |insns: u32, ifaces: u32| [insns.to_ne_bytes(), ifaces.to_ne_bytes()].concat();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (with(&[0; 4]), "filter header is 4 bytes"),
        (
            with(&counts(abi::FILTER_INSNS_MAX + 1, 0)),
            "instructions, more than",
        ),
        (
            with(&counts(0, abi::FILTER_IFINDEX_MAX + 1)),
            "interfaces, more than",
        ),
        // one instruction announced, none sent
        (with(&counts(1, 0)), "its counts say"),
        // one interface announced, two sent
        (with(&[counts(0, 1), vec![0; 8]].concat()), "its counts say"),
        // a jump past the end: the checker refuses it
        (
            with(
                &[
                    counts(1, 0),
                    Insn {
                        code: 0x05,
                        jt: 0,
                        jf: 0,
                        k: 1,
                    }
                    .to_bytes()
                    .to_vec(),
                ]
                .concat(),
            ),
            "jumps past the end",
        ),
    ];
    for (bytes, want) in cases {
        match Register::parse(&bytes) {
            Err(e @ ConfigError::Filter(_)) => {
                assert_eq!(e.errno(), libc::EINVAL);
                assert!(e.to_string().contains(want), "{e} (wanted {want})");
            }
            other => panic!("{want}: {other:?}"),
        }
    }
    // An unknown flag is refused whole.
    let c = Config {
        flags: 1 << 5,
        ..Config::default()
    };
    assert!(matches!(
        Register::parse(&c.to_bytes()),
        Err(ConfigError::OutOfRange("flags", 32, _))
    ));
}

//! The Rust mirror of the wire ABI against the C header, field by field.
//!
//! Generates a C program from the Rust description (every struct, member and
//! constant), compiles it against `kmod/imp2_uapi.h` with the system C
//! compiler, runs it, and compares what C says with what Rust says. A member
//! renamed, moved or resized on either side fails here; so does a member
//! added in C but not in Rust, since the members must tile the struct.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use imp2_format::wire::abi::{CONSTANTS, LAYOUTS};

fn header_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kmod")
}

fn c_program() -> String {
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"imp2_uapi.h\"\n\
         #define MEMBER(s, m) printf(\"%s.%s %zu %zu\\n\", #s, #m, \
         offsetof(struct s, m), sizeof(((struct s *)0)->m))\n\
         int main(void)\n{\n",
    );
    for layout in LAYOUTS {
        let s = layout.c_name;
        writeln!(c, "\tprintf(\"sizeof {s} %zu\\n\", sizeof(struct {s}));").unwrap();
        for (member, _) in layout.fields {
            writeln!(c, "\tMEMBER({s}, {member});").unwrap();
        }
    }
    for (name, _) in CONSTANTS {
        writeln!(
            c,
            "\tprintf(\"const {name} %lld\\n\", (long long)({name}));"
        )
        .unwrap();
    }
    c.push_str("\treturn 0;\n}\n");
    c
}

fn rust_description() -> String {
    let mut out = String::new();
    for layout in LAYOUTS {
        let s = layout.c_name;
        writeln!(out, "sizeof {s} {}", layout.size).unwrap();
        for (member, field) in layout.fields {
            writeln!(out, "{s}.{member} {} {}", field.offset, field.size).unwrap();
        }
    }
    for (name, value) in CONSTANTS {
        writeln!(out, "const {name} {value}").unwrap();
    }
    out
}

#[test]
fn rust_mirror_matches_c_header() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("abi.c");
    let binary = dir.path().join("abi");
    std::fs::write(&source, c_program()).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(header_dir())
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc}: {e}"));
    assert!(
        status.success(),
        "compiling the ABI program against imp2_uapi.h failed"
    );
    let output = Command::new(&binary).output().unwrap();
    assert!(output.status.success());
    let c_side = String::from_utf8(output.stdout).unwrap();
    let rust_side = rust_description();
    for (c_line, rust_line) in c_side.lines().zip(rust_side.lines()) {
        assert_eq!(
            c_line, rust_line,
            "C header (left) and Rust mirror (right) disagree"
        );
    }
    assert_eq!(c_side.lines().count(), rust_side.lines().count());
}

#[test]
fn members_tile_each_struct() {
    // Every byte of every struct belongs to exactly one member, so a member
    // the Rust side forgot would show up as a hole (the sizes are checked
    // against C above). No implicit padding is allowed in the ABI.
    for layout in LAYOUTS {
        let mut covered = vec![0u8; layout.size];
        for (member, field) in layout.fields {
            for byte in &mut covered[field.offset..field.offset + field.size] {
                *byte += 1;
            }
            assert!(
                field.offset + field.size <= layout.size,
                "{}.{member}",
                layout.c_name
            );
        }
        assert!(
            covered.iter().all(|&c| c == 1),
            "struct {} has holes or overlaps: {covered:?}",
            layout.c_name
        );
    }
}

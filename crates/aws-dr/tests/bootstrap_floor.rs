//! `lifeboat package`'s check of a bootstrap, on executables linked by real tools: zig for the glibc 2.17
//! floor (as cargo-lambda links the functions) and the host's gcc, whose glibc is newer.
//!
//! zig comes from the tools virtualenv that `scripts/test` installs (`LIFEBOAT_TOOLS_VENV`, package
//! ziglang).

use std::path::{Path, PathBuf};
use std::process::Command;

use lifeboat_aws_dr::package::{self, PackageError, elf};

const HELLO: &str =
    "#include <stdio.h>\nint main(void) { puts(\"hello from bootstrap\"); return 0; }\n";

fn tools_python() -> PathBuf {
    let venv = std::env::var_os("LIFEBOAT_TOOLS_VENV").expect(
        "LIFEBOAT_TOOLS_VENV names the tools virtualenv with ziglang (scripts/test sets it up and exports it)",
    );
    Path::new(&venv).join("bin/python")
}

/// Compiles HELLO with `compiler` (program and leading arguments) plus `flags`, into `dir/bootstrap`.
fn compile(dir: &Path, compiler: &[&str], flags: &[&str]) -> PathBuf {
    let source = dir.join("hello.c");
    std::fs::write(&source, HELLO).unwrap();
    let output_path = dir.join("bootstrap");
    let output = Command::new(compiler[0])
        .args(&compiler[1..])
        .args(flags)
        .arg("-o")
        .arg(&output_path)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("running {compiler:?}: {e}"));
    assert!(
        output.status.success(),
        "{compiler:?} {flags:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output_path
}

/// HELLO linked by zig against glibc 2.17, as cargo-lambda links the functions, with `flag` (`-s` strips it,
/// `-g` keeps debug information).
fn link_for_glibc_2_17(dir: &Path, flag: &str) -> PathBuf {
    let python = tools_python().display().to_string();
    compile(
        dir,
        &[&python, "-m", "ziglang", "cc"],
        &["-target", "x86_64-linux-gnu.2.17", "-O1", flag],
    )
}

#[test]
fn a_stripped_executable_linked_for_glibc_2_17_passes_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let binary = link_for_glibc_2_17(dir.path(), "-s");
    let facts = package::verify_bootstrap(&binary).expect("fit for Lambda");
    let glibc = facts
        .newest_glibc
        .expect("dynamically linked against glibc");
    assert!(glibc <= elf::GLIBC_FLOOR, "{glibc}");
    // And it is a working program on this (newer) glibc.
    let run = Command::new(&binary).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "hello from bootstrap"
    );
}

#[test]
fn debug_sections_are_refused_even_under_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let binary = link_for_glibc_2_17(dir.path(), "-g");
    match package::verify_bootstrap(&binary) {
        Err(PackageError::Unfit {
            source: elf::Unfit::DebugSections(sections),
            ..
        }) => assert!(sections.iter().any(|s| s == ".debug_info"), "{sections:?}"),
        other => panic!("expected the debug sections to be refused, got {other:?}"),
    }
}

#[test]
fn an_executable_linked_against_the_hosts_newer_glibc_is_refused_with_the_version_it_needs() {
    // This machine's glibc is 2.36 (Debian 12): gcc links main's start-up against GLIBC_2.34.
    let dir = tempfile::tempdir().unwrap();
    let binary = compile(dir.path(), &["gcc"], &["-O1", "-s"]);
    let err = package::verify_bootstrap(&binary).unwrap_err();
    let PackageError::Unfit {
        source: elf::Unfit::GlibcTooNew { needed },
        ..
    } = &err
    else {
        panic!("expected a glibc refusal, got {err:?}");
    };
    assert!(*needed > elf::GLIBC_FLOOR, "{needed}");
    let message = lifeboat_aws_dr::errors::error_chain(&err);
    assert!(message.contains("would not run on Lambda"), "{message}");
    assert!(message.contains(&needed.to_string()), "{message}");
    assert!(message.contains("GLIBC_2.17"), "{message}");
}

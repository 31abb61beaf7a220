//! Running the real `postfach` binary from tests, as an operator would.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `postfach --config CONFIG ARGS`, feeding `stdin`.
pub fn postfach(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_postfach"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start postfach");
    // A command that fails early may not read its input: a broken pipe is fine.
    let _ = child.stdin.take().expect("stdin").write_all(stdin.as_bytes());
    child.wait_with_output().expect("postfach ran")
}

/// Like [`postfach`] for a command that must succeed; returns its stdout.
pub fn postfach_ok(config: &Path, args: &[&str], stdin: &str) -> String {
    let out = postfach(config, args, stdin);
    assert!(out.status.success(), "postfach {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

//! What the CLI's end-to-end tests share: the checkout, the default model, running the
//! binary, and scratch files.

#![allow(dead_code)] // each test file uses its own part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The default model (`XLALIGN_MODEL`, else the one setup converts).
pub fn model() -> PathBuf {
    let p = std::env::var_os("XLALIGN_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("public/models/multilingual-e5-small-q4_0.gguf"));
    assert!(
        p.exists(),
        "default model {} missing: run `bash scripts/setup.sh` first",
        p.display()
    );
    p
}

/// Runs `xlalign ARGS` from the checkout with `stdin`.
pub fn xlalign(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xlalign"))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run xlalign");
    // The program may exit (on an error) before reading its input: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A path in this test process's own scratch folder.
pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xlalign-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Asserts a failure with a one-line `error: …` message containing `needle` and no panic.
pub fn assert_clean_error(out: &Output, needle: &str) {
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(
        !err.contains("panicked"),
        "panic instead of an error: {err}"
    );
    let last = err.lines().last().unwrap_or("");
    assert!(last.starts_with("error: "), "no error line: {err}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "error does not mention `{needle}`: {err}"
    );
}

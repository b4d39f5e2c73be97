//! A command whose reader has gone (`thorax ... | head`) ends quietly instead of panicking.

use std::process::{Command, Stdio};

#[test]
fn writing_into_a_closed_pipe_does_not_panic() {
    let (reader, writer) = std::io::pipe().unwrap();
    // The reading end is closed before the command starts, so its first write hits a broken pipe.
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_thorax"))
        .args(["info", "--json"])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("failed printing"), "{stderr}");
}

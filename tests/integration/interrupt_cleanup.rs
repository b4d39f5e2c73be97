//! An interrupted program removes the hidden temporary file of the output it was writing (src/interrupt.rs).

use std::path::Path;
use std::time::{Duration, Instant};

use thorax::atomic_file::{IfExists, PartialFile, write_file};

const CHILD_DIR: &str = "THORAX_INTERRUPT_CHILD_DIR";
const CHILD_TEST: &str = "interrupt_cleanup::child_writing_an_output_until_interrupted";

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Run by the test below in a process of its own (this test binary, this one test): it writes one output whole,
/// starts a second, and waits to be interrupted halfway through it.
#[test]
#[ignore = "the child process of an_interrupted_program_removes_the_temporary_file_it_was_writing"]
fn child_writing_an_output_until_interrupted() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else { return };
    let dir = Path::new(&dir);
    thorax::interrupt::remove_partial_files_on_interrupt().unwrap();
    write_file(&dir.join("done.csv"), IfExists::Refuse, b"whole").unwrap();
    let mut partial = PartialFile::create(&dir.join("half.csv"), IfExists::Refuse).unwrap();
    std::io::Write::write_all(partial.file(), b"half of th").unwrap();
    std::fs::write(dir.join("ready"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(120));
    panic!("not interrupted");
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn an_interrupted_program_removes_the_temporary_file_it_was_writing() {
    use std::os::unix::process::ExitStatusExt;
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", CHILD_TEST, "--ignored", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while !dir.path().join("ready").exists() {
            assert!(child.try_wait().unwrap().is_none(), "the child ended before it was interrupted");
            assert!(started.elapsed() < Duration::from_secs(60), "the child never got ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        let names = names_in(dir.path());
        assert!(
            names.iter().any(|name| name.starts_with(".half.csv.") && name.ends_with(".partial")),
            "the half-written file should be there before the signal: {names:?}"
        );
        // SAFETY: sends a signal to our own child process, which has not been waited for yet.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(signal), "ended by the signal's default action: {status:?}");
        assert_eq!(names_in(dir.path()), ["done.csv", "ready"], "signal {signal}");
        assert_eq!(std::fs::read(dir.path().join("done.csv")).unwrap(), b"whole");
    }
}

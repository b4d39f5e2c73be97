//! What an interrupted program does before it ends: Ctrl+C (SIGINT), a closed terminal (SIGHUP) or `kill` (SIGTERM)
//! would end the process at once and leave the hidden temporary file of an output being written
//! ([`crate::atomic_file`]) beside its target. A watcher thread removes those files, then ends the process the way
//! the signal's default action would, so the exit status still says which signal it was.

/// Starts the watcher. Call once, early in `main`; the workbench and every command get it.
#[cfg(unix)]
pub fn remove_partial_files_on_interrupt() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new().name("interrupt-cleanup".to_owned()).spawn(move || {
        if let Some(signal) = signals.forever().next() {
            // Held until the process ends, so that no new temporary file starts after the removal.
            let _held = crate::atomic_file::remove_live_partial_files();
            // Resets the default action and raises the signal again; the process ends here.
            let _ = signal_hook::low_level::emulate_default_handler(signal);
            std::process::exit(128 + signal);
        }
    })?;
    Ok(())
}

/// Elsewhere the default actions stay; Windows removes nothing on Ctrl+C.
#[cfg(not(unix))]
pub fn remove_partial_files_on_interrupt() -> std::io::Result<()> {
    Ok(())
}

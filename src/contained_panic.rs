//! Panics of third-party parsers on hostile bytes (a DICOM codec, the pickle reader) are caught and become errors
//! that name the file. Rust's default panic hook would still print "thread panicked at ..." (and a backtrace with
//! `RUST_BACKTRACE`) for a file that was refused cleanly, which reads like a crash of the program. The hook that
//! `main` installs stays silent for panics inside [`contain`] and prints every other panic as before.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;

thread_local! {
    /// How many [`contain`] calls this thread is inside.
    static CONTAINING: Cell<u32> = const { Cell::new(0) };
}

/// Installs the panic hook that leaves contained panics to their caller's error message.
pub fn install_quiet_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if CONTAINING.with(Cell::get) == 0 {
            default(info);
        }
    }));
}

/// Runs `work`, turning a panic into `Err` with the panic's message. Only for parsers of untrusted input whose
/// state is dropped with the error (the closure is taken as unwind-safe for that reason).
pub fn contain<R>(work: impl FnOnce() -> R) -> Result<R, String> {
    CONTAINING.with(|depth| depth.set(depth.get() + 1));
    let result = std::panic::catch_unwind(AssertUnwindSafe(work));
    CONTAINING.with(|depth| depth.set(depth.get().saturating_sub(1)));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contained_panic_becomes_its_message_and_the_depth_unwinds() {
        let out_of_bounds = contain(|| {
            let values: Vec<u8> = Vec::new();
            let index = values.len() + 1;
            values[index]
        });
        assert!(out_of_bounds.unwrap_err().contains("index out of bounds"));
        assert_eq!(contain(|| 7), Ok(7));
        assert_eq!(CONTAINING.with(Cell::get), 0);
    }
}

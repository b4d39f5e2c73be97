//! Where an inference pass's time goes, by kind of operation (`thorax bench --profile`).
//!
//! The networks call [`mark`] after each kind of work (a convolution, the BatchNorm + ReLU before it, a
//! concatenation, ...). When this thread has an active profile, `mark` waits for the device and charges the time
//! since the previous mark to that kind; otherwise it is one thread-local check. The waits hide the overlap of
//! launches with GPU work, so a profiled pass is slower than a timed one: the shares, not the sum, are the result.

use std::cell::RefCell;

use candle_core::Device;

use crate::train::step_profile::StepProfile;

thread_local! {
    static ACTIVE: RefCell<Option<StepProfile>> = const { RefCell::new(None) };
}

/// Starts profiling this thread's passes on `device` (replacing a profile already running).
pub fn start(device: &Device) {
    ACTIVE.with(|active| *active.borrow_mut() = Some(StepProfile::new(device)));
}

/// Whether this thread is profiling.
pub fn is_active() -> bool {
    ACTIVE.with(|active| active.borrow().is_some())
}

/// Starts a pass's clock once the device has finished earlier work.
pub fn begin_pass() -> candle_core::Result<()> {
    ACTIVE.with(|active| match active.borrow_mut().as_mut() {
        Some(profile) => profile.begin_step(),
        None => Ok(()),
    })
}

/// Charges the time since the previous mark to `kind` (no-op unless profiling).
pub fn mark(kind: &'static str) -> candle_core::Result<()> {
    ACTIVE.with(|active| match active.borrow_mut().as_mut() {
        Some(profile) => profile.mark(kind),
        None => Ok(()),
    })
}

/// Ends a pass (the first pass of a profile is not counted: it loads kernels and fills caches).
pub fn end_pass() {
    ACTIVE.with(|active| {
        if let Some(profile) = active.borrow_mut().as_mut() {
            profile.end_step();
        }
    });
}

/// Stops profiling this thread and returns what was measured.
pub fn finish() -> Option<StepProfile> {
    ACTIVE.with(|active| active.borrow_mut().take())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_count_only_while_a_profile_is_active() {
        mark("ignored").unwrap();
        assert!(!is_active());
        start(&Device::Cpu);
        for _ in 0..3 {
            begin_pass().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
            mark("convolution").unwrap();
            mark("concatenation").unwrap();
            end_pass();
        }
        let profile = finish().unwrap();
        assert!(!is_active());
        assert_eq!(profile.counted_steps(), 2);
        let report = profile.report();
        assert_eq!(report.iter().map(|p| p.phase).collect::<Vec<_>>(), ["convolution", "concatenation"]);
        assert!(report[0].ms_per_step >= 2.0, "{report:?}");
        assert!(report[0].ms_per_step > report[1].ms_per_step, "{report:?}");
    }
}

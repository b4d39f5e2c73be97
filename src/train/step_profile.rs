//! Where a training step's time goes: wall time per phase, with the device synchronised at every phase boundary so
//! that asynchronous GPU work is charged to the phase that queued it. The synchronisations cost a little and hide
//! overlap, so profiling is opt-in (`thorax train gan --profile`). The first step (kernel loading, library start-up)
//! is not counted.

use std::time::Instant;

use candle_core::Device;

/// Phase times of the steps since the first.
#[derive(Debug)]
pub struct StepProfile {
    device: Device,
    phases: Vec<(&'static str, f64)>,
    last: Instant,
    steps_ended: u64,
}

/// One phase's mean time per counted step.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PhaseTime {
    pub phase: &'static str,
    pub ms_per_step: f64,
    /// Share of the counted steps' total time, 0..1.
    pub share: f64,
}

impl StepProfile {
    pub fn new(device: &Device) -> Self {
        Self { device: device.clone(), phases: Vec::new(), last: Instant::now(), steps_ended: 0 }
    }

    /// Starts a step's clock once the device has finished earlier work.
    pub fn begin_step(&mut self) -> candle_core::Result<()> {
        self.device.synchronize()?;
        self.last = Instant::now();
        Ok(())
    }

    /// Charges the time since the previous mark (after the device finishes) to `phase`.
    pub fn mark(&mut self, phase: &'static str) -> candle_core::Result<()> {
        self.device.synchronize()?;
        let now = Instant::now();
        let seconds = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        if self.steps_ended == 0 {
            return Ok(());
        }
        match self.phases.iter_mut().find(|(name, _)| *name == phase) {
            Some((_, total)) => *total += seconds,
            None => self.phases.push((phase, seconds)),
        }
        Ok(())
    }

    pub fn end_step(&mut self) {
        self.steps_ended += 1;
    }

    /// Steps whose phases are counted (all but the first).
    pub fn counted_steps(&self) -> u64 {
        self.steps_ended.saturating_sub(1)
    }

    /// Mean milliseconds per counted step for each phase, in the order the phases first ran.
    pub fn report(&self) -> Vec<PhaseTime> {
        let steps = self.counted_steps().max(1) as f64;
        let total: f64 = self.phases.iter().map(|(_, s)| s).sum();
        self.phases
            .iter()
            .map(|&(phase, seconds)| PhaseTime {
                phase,
                ms_per_step: 1e3 * seconds / steps,
                share: if total > 0.0 { seconds / total } else { 0.0 },
            })
            .collect()
    }

    /// The report as an aligned text table.
    pub fn table(&self) -> String {
        let mut out = format!("step profile over {} steps (device synchronised per phase):\n", self.counted_steps());
        let report = self.report();
        let total: f64 = report.iter().map(|p| p.ms_per_step).sum();
        for phase in report {
            out.push_str(&format!(
                "  {:<28} {:>10.2} ms  {:>5.1}%\n",
                phase.phase,
                phase.ms_per_step,
                100.0 * phase.share
            ));
        }
        out.push_str(&format!("  {:<28} {:>10.2} ms\n", "total", total));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_step_is_not_counted_and_phases_keep_their_order() {
        let mut profile = StepProfile::new(&Device::Cpu);
        for step in 0..3 {
            profile.begin_step().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(if step == 0 { 30 } else { 2 }));
            profile.mark("forward").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(4));
            profile.mark("backward").unwrap();
            profile.end_step();
        }
        let report = profile.report();
        assert_eq!(profile.counted_steps(), 2);
        assert_eq!(report.iter().map(|p| p.phase).collect::<Vec<_>>(), ["forward", "backward"]);
        // The 30 ms first step is excluded: forward averages the two 2 ms sleeps (plus scheduling noise).
        assert!(report[0].ms_per_step >= 2.0 && report[0].ms_per_step < 25.0, "{report:?}");
        assert!(report[1].ms_per_step >= 4.0, "{report:?}");
        assert!((report.iter().map(|p| p.share).sum::<f64>() - 1.0).abs() < 1e-9);
    }
}

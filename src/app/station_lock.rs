//! A supervisor's lock on the reading station. While a study is open the workbench is hidden, but its home still
//! lets anyone close the study (and so reach the generator, the labelled samples and other studies), open another
//! study, read as another reader, or quit. A supervisor who sets a PIN takes those away from the readers until the
//! PIN is given again. The PIN lives only in memory, as a salted SHA-256 digest, and goes with the open study;
//! ending the program (answers are saved as they are given) is the way out of a forgotten one. After
//! [`FREE_ATTEMPTS`] wrong PINs in a row the field waits before it takes another, and each further wrong PIN doubles
//! the wait, so a reader cannot try PINs until one works.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Shortest PIN accepted: long enough that a reader does not guess it by trying a few.
pub const MIN_PIN_CHARS: usize = 4;

/// Wrong PINs in a row taken without a wait.
pub const FREE_ATTEMPTS: u32 = 3;
/// The wait after the last free attempt; it doubles with each further wrong PIN.
pub const FIRST_WAIT: Duration = Duration::from_secs(30);
/// The longest wait: a supervisor who mistypes a few times is not kept out for long.
pub const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);

/// What an unlock attempt did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnlockOutcome {
    Unlocked,
    /// Not the PIN; `wait` is how long until the next attempt is taken (zero while free attempts are left).
    Wrong {
        wait: Duration,
    },
    /// Not checked: the wait after earlier wrong PINs has `remaining` left.
    Waiting {
        remaining: Duration,
    },
}

/// The wait after `failures` wrong PINs in a row.
fn wait_after(failures: u32) -> Duration {
    if failures < FREE_ATTEMPTS {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_ATTEMPTS).min(16);
    FIRST_WAIT.saturating_mul(1 << doublings).min(LONGEST_WAIT)
}

/// Whole seconds, rounded up, for the notice ("try again in 30 s").
fn seconds_text(duration: Duration) -> String {
    let seconds = duration.as_millis().div_ceil(1000);
    if seconds >= 120 { format!("{} min {:02} s", seconds / 60, seconds % 60) } else { format!("{seconds} s") }
}

/// A set PIN, kept as a salted digest.
struct PinDigest {
    salt: [u8; 16],
    digest: [u8; 32],
}

impl PinDigest {
    fn new(pin: &str) -> Self {
        let salt = random_salt();
        Self { salt, digest: digest(&salt, pin) }
    }

    fn matches(&self, attempt: &str) -> bool {
        // Compared in full whatever the first difference, so the time taken says nothing about the PIN.
        let given = digest(&self.salt, attempt);
        given.iter().zip(&self.digest).fold(0u8, |differs, (a, b)| differs | (a ^ b)) == 0
    }
}

fn digest(salt: &[u8; 16], pin: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(pin.as_bytes());
    hasher.finalize().into()
}

/// Sixteen bytes from the standard library's per-process random hash keys and the clock; enough for a digest that
/// only has to differ between runs.
fn random_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    for (index, chunk) in salt.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(index);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    salt
}

/// The lock and the fields of its small form on the station's home.
#[derive(Default)]
pub struct StationLock {
    pin: Option<PinDigest>,
    /// The "Lock station" form is shown.
    form_open: bool,
    new_pin: String,
    repeated_pin: String,
    attempt: String,
    /// Why the last lock or unlock did not take.
    error: Option<String>,
    /// Wrong PINs since the lock or the last right one.
    failures: u32,
    /// No attempt is checked before this.
    next_attempt_at: Option<Instant>,
}

impl StationLock {
    /// Whether readers are kept from closing the study, opening another, switching reader and quitting.
    pub fn is_locked(&self) -> bool {
        self.pin.is_some()
    }

    /// Locks with `pin` (given twice, as typed). Refused, with the reason, when the two differ or the PIN is short.
    pub fn lock(&mut self, pin: &str, repeated: &str) -> Result<(), String> {
        if pin.chars().count() < MIN_PIN_CHARS {
            return Err(format!("the PIN needs at least {MIN_PIN_CHARS} characters"));
        }
        if pin != repeated {
            return Err("the two PINs differ".to_owned());
        }
        self.pin = Some(PinDigest::new(pin));
        Ok(())
    }

    /// Unlocks when `attempt` is the PIN, unless earlier wrong PINs still make it wait (then `attempt` is not even
    /// compared). `now` is the time of the attempt.
    pub fn unlock(&mut self, attempt: &str, now: Instant) -> UnlockOutcome {
        if let Some(remaining) = self.remaining_wait(now) {
            return UnlockOutcome::Waiting { remaining };
        }
        if self.pin.as_ref().is_some_and(|pin| pin.matches(attempt)) {
            self.pin = None;
            self.failures = 0;
            self.next_attempt_at = None;
            return UnlockOutcome::Unlocked;
        }
        self.failures = self.failures.saturating_add(1);
        let wait = wait_after(self.failures);
        self.next_attempt_at = (!wait.is_zero()).then(|| now + wait);
        UnlockOutcome::Wrong { wait }
    }

    /// How long until the next attempt is taken, if it has to wait.
    pub fn remaining_wait(&self, now: Instant) -> Option<Duration> {
        self.next_attempt_at.and_then(|at| at.checked_duration_since(now)).filter(|left| !left.is_zero())
    }

    /// Forgets the lock and the form (the study it guarded is closed).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The lock's controls on the station's home: "Lock station..." and its form when unlocked, the PIN field and
    /// "Unlock" when locked.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        if self.is_locked() {
            ui.label(
                egui::RichText::new(
                    "Station locked by the supervisor: closing the study, switching reader and quitting need the PIN.",
                )
                .strong(),
            );
            let now = Instant::now();
            let waiting = self.remaining_wait(now);
            ui.horizontal(|ui| {
                ui.add_enabled_ui(waiting.is_none(), |ui| {
                    let label = ui.label("Supervisor PIN");
                    let field =
                        ui.add(egui::TextEdit::singleline(&mut self.attempt).password(true).desired_width(120.0));
                    let field = field.labelled_by(label.id);
                    let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                    if ui.button("Unlock").clicked() || entered {
                        let attempt = std::mem::take(&mut self.attempt);
                        self.error = match self.unlock(&attempt, now) {
                            UnlockOutcome::Unlocked => None,
                            UnlockOutcome::Wrong { wait } if wait.is_zero() => Some("That is not the PIN.".to_owned()),
                            // The wait's own notice below says it.
                            UnlockOutcome::Wrong { .. } | UnlockOutcome::Waiting { .. } => None,
                        };
                    }
                });
            });
            if let Some(remaining) = self.remaining_wait(now) {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!(
                        "{} wrong PINs in a row: the next one is taken in {}.",
                        self.failures,
                        seconds_text(remaining)
                    ),
                );
                // The countdown moves once a second, and the field comes back by itself.
                ui.ctx().request_repaint_after(remaining.min(Duration::from_secs(1)));
            }
        } else if self.form_open {
            ui.label(
                egui::RichText::new(
                    "Lock the station before a reader sits down: closing the study, opening another, switching \
                     reader and quitting then need this PIN. It is kept in memory only; a forgotten PIN means ending \
                     the program (answers are saved as they are given).",
                )
                .weak(),
            );
            egui::Grid::new("station_lock_form").num_columns(2).show(ui, |ui| {
                let label = ui.label("New PIN");
                ui.add(egui::TextEdit::singleline(&mut self.new_pin).password(true).desired_width(120.0))
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("PIN again");
                ui.add(egui::TextEdit::singleline(&mut self.repeated_pin).password(true).desired_width(120.0))
                    .labelled_by(label.id);
                ui.end_row();
            });
            ui.horizontal(|ui| {
                if ui.button("Lock").clicked() {
                    let (pin, repeated) = (std::mem::take(&mut self.new_pin), std::mem::take(&mut self.repeated_pin));
                    match self.lock(&pin, &repeated) {
                        Ok(()) => {
                            self.form_open = false;
                            self.error = None;
                        }
                        Err(reason) => self.error = Some(format!("Not locked: {reason}.")),
                    }
                }
                if ui.button("Cancel").clicked() {
                    self.clear();
                }
            });
        } else if ui
            .button("Lock station...")
            .on_hover_text("Set a supervisor PIN that closing the study, switching reader and quitting then need")
            .clicked()
        {
            self.form_open = true;
            self.error = None;
        }
        if let Some(error) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pin_unlocks_and_short_or_mistyped_pins_are_refused() {
        let mut lock = StationLock::default();
        assert!(!lock.is_locked());
        assert_eq!(lock.lock("123", "123"), Err("the PIN needs at least 4 characters".to_owned()));
        assert_eq!(lock.lock("2468", "2469"), Err("the two PINs differ".to_owned()));
        assert!(!lock.is_locked());
        lock.lock("2468", "2468").unwrap();
        assert!(lock.is_locked());
        let mut now = Instant::now();
        for wrong in ["", "246", "24680", "2469", " 2468"] {
            // Past any wait, so that each attempt is compared.
            now += LONGEST_WAIT;
            assert!(matches!(lock.unlock(wrong, now), UnlockOutcome::Wrong { .. }), "{wrong:?}");
            assert!(lock.is_locked());
        }
        now += LONGEST_WAIT;
        assert_eq!(lock.unlock("2468", now), UnlockOutcome::Unlocked);
        assert!(!lock.is_locked());
        assert!(matches!(lock.unlock("2468", now), UnlockOutcome::Wrong { .. }), "nothing to unlock");
    }

    #[test]
    fn wrong_pins_after_the_free_ones_wait_longer_each_time_and_the_pin_is_not_checked_while_waiting() {
        let mut lock = StationLock::default();
        lock.lock("2468", "2468").unwrap();
        let start = Instant::now();
        for _ in 1..FREE_ATTEMPTS {
            assert_eq!(lock.unlock("0000", start), UnlockOutcome::Wrong { wait: Duration::ZERO });
        }
        assert_eq!(lock.unlock("0000", start), UnlockOutcome::Wrong { wait: FIRST_WAIT });
        // Even the right PIN is not compared during the wait.
        let during = start + FIRST_WAIT - Duration::from_secs(1);
        assert_eq!(lock.unlock("2468", during), UnlockOutcome::Waiting { remaining: Duration::from_secs(1) });
        assert!(lock.is_locked());
        // Each wrong PIN after a wait doubles it, up to the longest.
        let mut now = start + FIRST_WAIT;
        let mut expected = FIRST_WAIT;
        for _ in 0..8 {
            expected = (expected * 2).min(LONGEST_WAIT);
            assert_eq!(lock.unlock("1111", now), UnlockOutcome::Wrong { wait: expected });
            now += expected;
        }
        assert_eq!(expected, LONGEST_WAIT);
        assert_eq!(lock.unlock("2468", now), UnlockOutcome::Unlocked);
        // The right PIN starts the count afresh.
        lock.lock("1357", "1357").unwrap();
        assert_eq!(lock.unlock("0000", now), UnlockOutcome::Wrong { wait: Duration::ZERO });
    }

    #[test]
    fn waits_read_in_whole_seconds_rounded_up() {
        assert_eq!(seconds_text(Duration::from_millis(29_001)), "30 s");
        assert_eq!(seconds_text(Duration::from_secs(119)), "119 s");
        assert_eq!(seconds_text(Duration::from_secs(15 * 60)), "15 min 00 s");
    }

    #[test]
    fn the_digest_is_salted_afresh_for_each_lock() {
        let (a, b) = (PinDigest::new("2468"), PinDigest::new("2468"));
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.digest, b.digest);
        assert!(a.matches("2468") && b.matches("2468"));
    }
}

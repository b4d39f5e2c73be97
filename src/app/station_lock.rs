//! A supervisor's lock on the reading station. While a study is open the workbench is hidden, but its home still
//! lets anyone close the study (and so reach the generator, the labelled samples and other studies), open another
//! study, read as another reader, or quit. A supervisor who sets a PIN takes those away from the readers until the
//! PIN is given again. The PIN lives only in memory, as a salted SHA-256 digest, and goes with the open study;
//! ending the program (answers are saved as they are given) is the way out of a forgotten one.

use std::hash::{BuildHasher, Hasher};

use sha2::{Digest, Sha256};

/// Shortest PIN accepted: long enough that a reader does not guess it by trying a few.
pub const MIN_PIN_CHARS: usize = 4;

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

    /// Unlocks when `attempt` is the PIN; returns whether it was.
    pub fn unlock(&mut self, attempt: &str) -> bool {
        let matches = self.pin.as_ref().is_some_and(|pin| pin.matches(attempt));
        if matches {
            self.pin = None;
        }
        matches
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
            ui.horizontal(|ui| {
                let label = ui.label("Supervisor PIN");
                let field = ui.add(egui::TextEdit::singleline(&mut self.attempt).password(true).desired_width(120.0));
                let field = field.labelled_by(label.id);
                let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if ui.button("Unlock").clicked() || entered {
                    let attempt = std::mem::take(&mut self.attempt);
                    self.error = (!self.unlock(&attempt)).then(|| "That is not the PIN.".to_owned());
                }
            });
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
        for wrong in ["", "246", "24680", "2469", " 2468"] {
            assert!(!lock.unlock(wrong), "{wrong:?}");
            assert!(lock.is_locked());
        }
        assert!(lock.unlock("2468"));
        assert!(!lock.is_locked());
        assert!(!lock.unlock("2468"), "nothing to unlock");
    }

    #[test]
    fn the_digest_is_salted_afresh_for_each_lock() {
        let (a, b) = (PinDigest::new("2468"), PinDigest::new("2468"));
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.digest, b.digest);
        assert!(a.matches("2468") && b.matches("2468"));
    }
}

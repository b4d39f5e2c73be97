//! AdamW with a state we can save: candle-nn's optimiser keeps its moments private, and exact resume needs them.
//! With `beta1 = 0` and `beta2 = 0.99` (the original's settings) and no weight decay this is the original's Adam.

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::train::error::TrainError;

/// AdamW hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamSettings {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
}

/// The optimiser state: step count and the first and second moments of every parameter.
pub struct AdamW {
    pub settings: AdamSettings,
    /// Updates taken so far.
    pub step: u64,
    pub first_moment: BTreeMap<String, Tensor>,
    pub second_moment: BTreeMap<String, Tensor>,
}

impl AdamW {
    /// Zero moments for `params`.
    pub fn new(settings: AdamSettings, params: &BTreeMap<String, Var>) -> Result<Self, TrainError> {
        let mut first_moment = BTreeMap::new();
        let mut second_moment = BTreeMap::new();
        for (name, var) in params {
            first_moment.insert(name.clone(), var.as_tensor().zeros_like()?);
            second_moment.insert(name.clone(), var.as_tensor().zeros_like()?);
        }
        Ok(Self { settings, step: 0, first_moment, second_moment })
    }

    /// One update of every parameter that has a gradient in `grads`.
    pub fn update(&mut self, params: &BTreeMap<String, Var>, grads: &GradStore) -> Result<(), TrainError> {
        self.step += 1;
        let AdamSettings { lr, beta1, beta2, epsilon, weight_decay } = self.settings;
        let step = i32::try_from(self.step).unwrap_or(i32::MAX);
        let bias1 = 1.0 - beta1.powi(step);
        let bias2 = 1.0 - beta2.powi(step);
        for (name, var) in params {
            let Some(grad) = grads.get(var.as_tensor()) else { continue };
            // A gradient recorded in a graph (`CANDLE_GRAD_DO_NOT_DETACH`) would chain every step's moments to the
            // last and keep them all in memory.
            let grad = grad.detach();
            let grad = &grad;
            let missing = || TrainError::MissingParameter { network: "optimiser".to_owned(), name: name.clone() };
            let m = self.first_moment.get_mut(name).ok_or_else(missing)?;
            *m = ((&*m * beta1)? + (grad * (1.0 - beta1))?)?;
            let m_hat = (&*m / bias1)?;
            let v = self.second_moment.get_mut(name).ok_or_else(missing)?;
            *v = ((&*v * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
            let v_hat = (&*v / bias2)?;
            let decayed = (var.as_tensor().detach() * (1.0 - lr * weight_decay))?;
            let delta = ((m_hat / (v_hat.sqrt()? + epsilon)?)? * lr)?;
            var.set(&(decayed - delta)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// Two steps against the closed form of Adam with beta1 = 0.5, beta2 = 0.9 on a single weight.
    #[test]
    fn matches_hand_computed_adam_steps() {
        let var = Var::from_tensor(&Tensor::new(&[1.0f32], &Device::Cpu).unwrap()).unwrap();
        let params = BTreeMap::from([("w".to_owned(), var.clone())]);
        let settings = AdamSettings { lr: 0.1, beta1: 0.5, beta2: 0.9, epsilon: 1e-8, weight_decay: 0.0 };
        let mut adam = AdamW::new(settings, &params).unwrap();
        let (mut w, mut m, mut v) = (1.0f64, 0.0f64, 0.0f64);
        for t in 1..=2 {
            // loss = w^2, gradient 2w
            let loss = var.as_tensor().sqr().unwrap().sum_all().unwrap();
            adam.update(&params, &loss.backward().unwrap()).unwrap();
            let g = 2.0 * w;
            m = 0.5 * m + 0.5 * g;
            v = 0.9 * v + 0.1 * g * g;
            let m_hat = m / (1.0 - 0.5f64.powi(t));
            let v_hat = v / (1.0 - 0.9f64.powi(t));
            w -= 0.1 * m_hat / (v_hat.sqrt() + 1e-8);
            let got = f64::from(var.as_tensor().to_vec1::<f32>().unwrap()[0]);
            assert!((got - w).abs() < 1e-6, "step {t}: {got} vs {w}");
        }
    }
}

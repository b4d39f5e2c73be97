//! The exponential moving average of the generator's parameters (the original's `Gs`, beta 0.999), which is the
//! generator we ship. Early on the average would be dominated by the random start, so beta ramps up as
//! `min(beta, (1 + t) / (10 + t))` (the warm-up of e.g. Mean Teacher and StyleGAN's EMA ramp in spirit).

use std::collections::BTreeMap;

use candle_core::{Tensor, Var};

use crate::train::error::TrainError;

/// Averaged copies of parameters, by name.
pub struct Ema {
    /// The target decay per step.
    pub beta: f64,
    pub tensors: BTreeMap<String, Tensor>,
}

impl Ema {
    /// Starts the average at the current parameters (copied, so later updates of `params` do not alias it).
    pub fn new(beta: f64, params: &BTreeMap<String, Var>) -> Result<Self, TrainError> {
        let tensors = params
            .iter()
            .map(|(name, var)| Ok((name.clone(), var.as_tensor().detach().copy()?)))
            .collect::<Result<_, candle_core::Error>>()?;
        Ok(Self { beta, tensors })
    }

    /// The decay used after `step` updates (0-based).
    pub fn beta_at(&self, step: u64) -> f64 {
        let t = step as f64;
        self.beta.min((1.0 + t) / (10.0 + t))
    }

    /// `ema = beta * ema + (1 - beta) * param` for every parameter.
    pub fn update(&mut self, params: &BTreeMap<String, Var>, step: u64) -> Result<(), TrainError> {
        let beta = self.beta_at(step);
        for (name, var) in params {
            let average = self.tensors.get_mut(name).ok_or_else(|| TrainError::MissingParameter {
                network: "generator EMA".to_owned(),
                name: name.clone(),
            })?;
            *average = ((&*average * beta)? + (var.as_tensor().detach() * (1.0 - beta))?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn average_follows_the_ramped_formula() {
        let var = Var::from_tensor(&Tensor::new(&[0.0f32], &Device::Cpu).unwrap()).unwrap();
        let params = BTreeMap::from([("w".to_owned(), var.clone())]);
        let mut ema = Ema::new(0.999, &params).unwrap();
        let mut expected = 0.0f64;
        for step in 0..5u64 {
            var.set(&Tensor::new(&[1.0f32], &Device::Cpu).unwrap()).unwrap();
            ema.update(&params, step).unwrap();
            let beta = ((1.0 + step as f64) / (10.0 + step as f64)).min(0.999);
            expected = beta * expected + (1.0 - beta);
        }
        let got = f64::from(ema.tensors["w"].to_vec1::<f32>().unwrap()[0]);
        assert!((got - expected).abs() < 1e-6);
        assert_eq!(ema.beta_at(1_000_000), 0.999);
    }
}

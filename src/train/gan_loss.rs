//! The GAN objective: the non-saturating logistic loss (Goodfellow et al. 2014, as in StyleGAN) plus the AC-GAN
//! multi-label term of Thorax_GAN (`loss.py`: sigmoid cross-entropy summed over the labels; on real images for D,
//! `fake_label_weight = 0`; on fakes for G, `cond_weight = 1`). Only first-order gradients are needed, so candle's
//! default backward (which detaches gradients) computes them correctly; no gradient penalty is used.

use candle_core::{D, Tensor};

/// `ln(1 + e^x)`, computed as `max(x, 0) + ln(1 + e^-|x|)` so it neither overflows nor loses small values.
pub fn softplus(x: &Tensor) -> candle_core::Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// Sigmoid cross-entropy of `logits` against `targets` in [0, 1], summed over the labels where `mask` is 1 and
/// averaged over the batch: `mean_n sum_l mask * (softplus(x) - x * y)`.
pub fn masked_label_loss(logits: &Tensor, targets: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let per_label = (softplus(logits)? - (logits * targets)?)?;
    (per_label * mask)?.sum(D::Minus1)?.mean_all()
}

/// The discriminator's loss and its parts.
pub struct DiscriminatorLoss {
    /// `adversarial + label_weight * label`, the tensor to differentiate.
    pub total: Tensor,
    /// `mean softplus(D(fake)) + mean softplus(-D(real))`.
    pub adversarial: Tensor,
    /// The label loss on real images.
    pub label: Tensor,
}

/// The generator's loss and its parts.
pub struct GeneratorLoss {
    /// `adversarial + label_weight * label`, the tensor to differentiate.
    pub total: Tensor,
    /// `mean softplus(-D(fake))`.
    pub adversarial: Tensor,
    /// The label loss on fakes against the labels they were generated with.
    pub label: Tensor,
}

/// D's loss from its logits on real and fake images and its label logits on the real ones.
pub fn discriminator_loss(
    real_logits: &Tensor,
    fake_logits: &Tensor,
    real_label_logits: &Tensor,
    real_labels: &Tensor,
    real_mask: &Tensor,
    label_weight: f64,
) -> candle_core::Result<DiscriminatorLoss> {
    let adversarial = (softplus(fake_logits)?.mean_all()? + softplus(&real_logits.neg()?)?.mean_all()?)?;
    let label = masked_label_loss(real_label_logits, real_labels, real_mask)?;
    let total = (&adversarial + (&label * label_weight)?)?;
    Ok(DiscriminatorLoss { total, adversarial, label })
}

/// G's loss from D's logits on its fakes and D's label logits for them.
pub fn generator_loss(
    fake_logits: &Tensor,
    fake_label_logits: &Tensor,
    fake_labels: &Tensor,
    fake_mask: &Tensor,
    label_weight: f64,
) -> candle_core::Result<GeneratorLoss> {
    let adversarial = softplus(&fake_logits.neg()?)?.mean_all()?;
    let label = masked_label_loss(fake_label_logits, fake_labels, fake_mask)?;
    let total = (&adversarial + (&label * label_weight)?)?;
    Ok(GeneratorLoss { total, adversarial, label })
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    fn scalar(t: &Tensor) -> f64 {
        f64::from(t.to_scalar::<f32>().unwrap())
    }

    #[test]
    fn softplus_is_exact_and_stable_at_the_extremes() {
        let xs = [-200.0f32, -20.0, -1.0, 0.0, 0.5, 20.0, 200.0];
        let values = softplus(&Tensor::new(&xs, &Device::Cpu).unwrap()).unwrap().to_vec1::<f32>().unwrap();
        for (x, v) in xs.iter().zip(values) {
            let expected = f64::from(*x).exp().ln_1p().max(f64::from(*x).max(0.0));
            let expected = if *x > 30.0 { f64::from(*x) } else { expected };
            assert!((f64::from(v) - expected).abs() <= 1e-6 * expected.abs().max(1.0), "{x}: {v} vs {expected}");
        }
    }

    /// The gradient of the masked label loss is `mask * (sigmoid(x) - y) / N`; checked against finite differences.
    #[test]
    fn label_loss_gradient_matches_finite_differences() {
        let device = Device::Cpu;
        let logits = [0.3f32, -1.2, 2.0, 0.1, -0.4, 0.9];
        let targets = Tensor::new(&[[1.0f32, 0.0, 1.0], [0.0, 1.0, 0.0]], &device).unwrap();
        let mask = Tensor::new(&[[1.0f32, 1.0, 0.0], [1.0, 1.0, 1.0]], &device).unwrap();
        let var = Var::from_tensor(&Tensor::new(&logits, &device).unwrap().reshape((2, 3)).unwrap()).unwrap();
        let loss = masked_label_loss(var.as_tensor(), &targets, &mask).unwrap();
        let grad =
            loss.backward().unwrap().get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let eval = |values: &[f32]| {
            let t = Tensor::new(values, &device).unwrap().reshape((2, 3)).unwrap();
            scalar(&masked_label_loss(&t, &targets, &mask).unwrap())
        };
        for i in 0..logits.len() {
            let h = 1e-2f32;
            let mut plus = logits;
            let mut minus = logits;
            plus[i] += h;
            minus[i] -= h;
            let numeric = (eval(&plus) - eval(&minus)) / (2.0 * f64::from(h));
            assert!((numeric - f64::from(grad[i])).abs() < 1e-3, "{i}: {numeric} vs {}", grad[i]);
        }
        // Masked-out entry (row 0, label 2) gets no gradient.
        assert_eq!(grad[2], 0.0);
    }

    #[test]
    fn discriminator_loss_prefers_correct_scores() {
        let device = Device::Cpu;
        let labels = Tensor::zeros((2, 1), candle_core::DType::F32, &device).unwrap();
        let mask = labels.ones_like().unwrap();
        let good = discriminator_loss(
            &Tensor::new(&[5.0f32, 5.0], &device).unwrap(),
            &Tensor::new(&[-5.0f32, -5.0], &device).unwrap(),
            &Tensor::new(&[[-5.0f32], [-5.0]], &device).unwrap(),
            &labels,
            &mask,
            1.0,
        )
        .unwrap();
        assert!(scalar(&good.total) < 0.03);
        let g = generator_loss(
            &Tensor::new(&[-5.0f32, -5.0], &device).unwrap(),
            &Tensor::new(&[[0.0f32], [0.0]], &device).unwrap(),
            &labels,
            &mask,
            1.0,
        )
        .unwrap();
        assert!((scalar(&g.adversarial) - (1.0f64 + 5f64.exp()).ln()).abs() < 1e-4);
        assert!((scalar(&g.label) - 2f64.ln()).abs() < 1e-6);
    }
}

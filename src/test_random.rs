//! Seeded random tensors for unit tests. candle's CPU `randn` cannot be seeded, and a finite-difference check on
//! unseeded draws fails now and then (an input within the step of a ReLU's kink). The test harness runs each test
//! on a thread of its own, so this thread-local generator gives a test the same values on every run.

use std::cell::RefCell;

use candle_core::{Device, Shape, Tensor, WithDType};

use crate::models::densenet::SeededRng;

thread_local! {
    static RNG: RefCell<SeededRng> = RefCell::new(SeededRng::new(0x5EED));
}

/// Normal values of `mean` and `std` in `shape`, on the CPU, of `mean`'s dtype.
pub(crate) fn randn<T: WithDType>(mean: T, std: f64, shape: impl Into<Shape>) -> Tensor {
    let shape = shape.into();
    let values: Vec<T> = RNG.with(|rng| {
        let mut rng = rng.borrow_mut();
        (0..shape.elem_count()).map(|_| T::from_f64(mean.to_f64() + std * rng.normal())).collect()
    });
    Tensor::from_vec(values, shape, &Device::Cpu).expect("values match their shape")
}

/// Uniform values in `[low, high)`, on the CPU, of `low`'s dtype.
pub(crate) fn rand<T: WithDType>(low: T, high: T, shape: impl Into<Shape>) -> Tensor {
    let shape = shape.into();
    let (low, span) = (low.to_f64(), high.to_f64() - low.to_f64());
    let values: Vec<T> = RNG.with(|rng| {
        let mut rng = rng.borrow_mut();
        (0..shape.elem_count()).map(|_| T::from_f64(low + span * rng.uniform())).collect()
    });
    Tensor::from_vec(values, shape, &Device::Cpu).expect("values match their shape")
}

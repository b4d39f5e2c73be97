//! Runs heavy work on rayon's thread pool instead of on the thread that asks for it.
//!
//! Our CPU kernels and candle's split their loops over rayon's global pool, one thread per core. Work started from a
//! thread outside the pool (the CLI's main thread, the workbench's inference worker) runs its serial parts (candle's
//! elementwise ops, autograd's bookkeeping) on that thread while the pool's threads spin for a while between parallel
//! loops: on 2 cores that is three busy threads, and the serial parts get about two thirds of a core. Started on a
//! pool thread, the serial parts run on one of the pool's own threads and only the others wait. On the 2-core CPU
//! (2026-11-27, two rounds each) this took CycleGAN training (64 px, batch 1) from 6.8-6.9 to 7.9 step/s and the 64 px
//! classifier's from 5.0 to 5.7; the 128 px GAN step, dominated by large parallel convolutions, did not change.
//!
//! Only short work goes here from the workbench (one inference request at a time). Its long background jobs (metrics
//! over hundreds of images) keep their own threads: queued on the pool's two threads, a few of them would hold back
//! the next slider image until one ended, and a pool thread that waits inside a loop may start queued work there.

/// Stack of the pool's threads: training's backward pass walks the autograd graph recursively (candle's
/// `sorted_nodes`), well over a thousand ops deep for DenseNet-121; as much as a main thread has, not a spawned
/// thread's 2 MiB.
const POOL_STACK_BYTES: usize = 8 << 20;

/// Sets up rayon's global pool (thread count from `RAYON_NUM_THREADS` or the cores, as rayon's default) with
/// [`POOL_STACK_BYTES`] stacks. Call it before any parallel work; if the pool already exists it stays as it is.
pub fn configure_global_pool() {
    if let Err(error) = rayon::ThreadPoolBuilder::new().stack_size(POOL_STACK_BYTES).build_global() {
        log::warn!("rayon's thread pool was set up before its stack size could be set: {error}");
    }
}

/// Runs `work` on a thread of rayon's global pool and returns its result; the calling thread waits.
pub fn run_on_compute_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    // A scope opened outside the pool runs its body on a pool thread and blocks the caller until it ends; opened on a
    // pool thread it just runs there.
    rayon::scope(|_| work())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_on_a_pool_thread_and_returns_its_result() {
        assert!(rayon::current_thread_index().is_none(), "the test thread is not one of rayon's");
        let (index, sum) = run_on_compute_pool(|| (rayon::current_thread_index(), (1..=10).sum::<i32>()));
        assert!(index.is_some(), "the work ran outside rayon's pool");
        assert_eq!(sum, 55);
    }
}

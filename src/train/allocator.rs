//! Heap settings for training. A training step allocates and frees tensors of tens of megabytes hundreds of times;
//! glibc serves blocks above its mmap threshold (at most 32 MiB) with fresh `mmap`s and returns them with `munmap`,
//! so every step pays page faults and TLB shootdowns for memory it just gave back. Measured on a 64 px GAN step at
//! batch 16: system time 9.9 s -> 1.0 s for 4 steps, wall time -19%, peak memory +5%.

/// Makes glibc keep freed memory in the heap for reuse: no mmap for large blocks, no trimming of the heap top.
/// Process-wide; called by the training commands only (the GUI keeps the default, which returns memory sooner).
pub fn keep_freed_memory_for_reuse() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before training allocates its tensors.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

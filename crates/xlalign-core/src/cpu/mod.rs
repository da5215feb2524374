//! CPU backend (placeholder until the kernels land).

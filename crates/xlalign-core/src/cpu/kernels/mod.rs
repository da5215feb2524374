//! The CPU kernels, usable on their own as reference implementations ("twins") for other
//! backends' kernels.
//!
//! Every kernel has a scalar version and, where it pays, SIMD versions for x86-64
//! (AVX2/FMA, plus AVX-VNNI or AVX-512 VNNI for the int8 products) and wasm32 (`simd128`, plus
//! relaxed SIMD for the int8 products with the crate feature `relaxed-simd`). The instruction set is an explicit
//! [`Isa`] argument on the `*_with` functions (the plain names use [`Isa::best`]); tests
//! check each SIMD version against the scalar one on random shapes.
//!
//! - [`math`]: `exp`, `erf`, `gelu`, LayerNorm, row softmax.
//! - [`quant`]: int8 activation blocks ([`Q8Rows`]).
//! - [`qmatmul`]: Q4_0/Q8_0 weights × int8 activations.
//! - [`fmatmul`]: f32 matrix product.
//! - [`attention`]: multi-head self-attention per sequence.
//! - [`linear`]: linear layers over any stored weight type, and an f32 reference.

pub mod attention;
pub mod fmatmul;
pub mod isa;
pub mod linear;
pub mod math;
pub mod qmatmul;
pub mod quant;

pub use attention::{attention, attention_with};
pub use fmatmul::{matmul, matmul_with};
pub use isa::Isa;
pub use linear::{linear_reference, LinearLayer, LinearWeight};
pub use math::{
    activation, activation_with, add_layer_norm, erf, exp, gelu, gelu_tanh, layer_norm,
    layer_norm_with, softmax_rows, softmax_rows_with,
};
pub use qmatmul::{qmatmul, qmatmul_with, QFormat, QMatrix};
pub use quant::Q8Rows;

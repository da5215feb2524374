//! Which instruction set the kernels run on, chosen once per backend.
//!
//! An [`Isa`] value can only be obtained for an instruction set this CPU supports, so holding
//! one is the proof the `unsafe` SIMD entry points need.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Scalar,
    /// x86-64 AVX2 + FMA: int8 dot products with `vpmaddubsw`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    /// AVX2 plus AVX-VNNI: `vpdpbusd` replaces the maddubs/madd pair.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    AvxVnni,
    /// AVX2 plus AVX-512 VNNI (with AVX512VL and AVX512BW): `vpdpbusd` in its EVEX form, on
    /// 512-bit registers (two weight blocks at a time) — the processors that have AVX-512 VNNI
    /// but not the VEX-coded AVX-VNNI (AMD Zen 4 and 5, Intel Ice Lake and Cascade Lake
    /// Xeons).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx512Vnni,
    /// WebAssembly 128-bit SIMD (compile-time: the module is built with `+simd128`).
    #[cfg_attr(
        not(all(target_arch = "wasm32", target_feature = "simd128")),
        allow(dead_code)
    )]
    Simd128,
    /// `simd128` plus relaxed SIMD (compile-time: `+simd128` and the crate feature
    /// `relaxed-simd`, which compiles only those kernels for relaxed SIMD): the int8 products
    /// use `i32x4.relaxed_dot_i8x16_i7x16_add_s`, with operands chosen so that every processor
    /// gives the same result (see `qmatmul`); every other kernel is the `simd128` one.
    #[cfg_attr(
        not(all(
            target_arch = "wasm32",
            target_feature = "simd128",
            feature = "relaxed-simd"
        )),
        allow(dead_code)
    )]
    RelaxedSimd,
}

/// An instruction set the kernels can use on this machine.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Isa(Kind);

impl Isa {
    /// Plain Rust; the reference every SIMD kernel is tested against.
    pub const fn scalar() -> Isa {
        Isa(Kind::Scalar)
    }

    /// The fastest instruction set this CPU (or wasm build) supports.
    pub fn best() -> Isa {
        *Isa::available().last().expect("scalar is always available")
    }

    /// Every supported instruction set, slowest first (scalar first).
    pub fn available() -> Vec<Isa> {
        #[allow(unused_mut)] // nothing to add on targets without SIMD kernels
        let mut v = vec![Isa::scalar()];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                v.push(Isa(Kind::Avx2));
                if is_x86_feature_detected!("avxvnni") {
                    v.push(Isa(Kind::AvxVnni));
                }
                if is_x86_feature_detected!("avx512vnni")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512f")
                {
                    v.push(Isa(Kind::Avx512Vnni));
                }
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        v.push(Isa(Kind::Simd128));
        #[cfg(all(
            target_arch = "wasm32",
            target_feature = "simd128",
            feature = "relaxed-simd"
        ))]
        v.push(Isa(Kind::RelaxedSimd));
        v
    }

    /// Looks an instruction set up by name (`scalar`, `avx2`, `avxvnni`, `avx512vnni`,
    /// `simd128`, `relaxed-simd`); `None`
    /// if the name is unknown or this machine lacks it.
    pub fn by_name(name: &str) -> Option<Isa> {
        Isa::available().into_iter().find(|i| i.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self.0 {
            Kind::Scalar => "scalar",
            Kind::Avx2 => "avx2",
            Kind::AvxVnni => "avxvnni",
            Kind::Avx512Vnni => "avx512vnni",
            Kind::Simd128 => "simd128",
            Kind::RelaxedSimd => "relaxed-simd",
        }
    }

    pub(crate) fn is_scalar(self) -> bool {
        self.0 == Kind::Scalar
    }

    /// Runs the Q4_0 kernels whose vector lanes are weight rows (on x86-64 and in the wasm
    /// builds: `qmatmul`'s regrouped copy).
    pub(crate) fn has_row_kernels(self) -> bool {
        !self.is_scalar()
    }

    /// AVX2 + FMA are usable (true for the VNNI levels too).
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn has_avx2(self) -> bool {
        matches!(self.0, Kind::Avx2 | Kind::AvxVnni | Kind::Avx512Vnni)
    }

    #[cfg(target_arch = "x86_64")]
    pub(crate) fn has_avxvnni(self) -> bool {
        self.0 == Kind::AvxVnni
    }

    #[cfg(target_arch = "x86_64")]
    pub(crate) fn has_avx512vnni(self) -> bool {
        self.0 == Kind::Avx512Vnni
    }

    /// The `simd128` kernels are usable (true for relaxed SIMD too, which adds to them).
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub(crate) fn has_simd128(self) -> bool {
        matches!(self.0, Kind::Simd128 | Kind::RelaxedSimd)
    }

    #[cfg(all(
        target_arch = "wasm32",
        target_feature = "simd128",
        feature = "relaxed-simd"
    ))]
    pub(crate) fn has_relaxed_simd(self) -> bool {
        self.0 == Kind::RelaxedSimd
    }
}

impl fmt::Debug for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_is_always_first_and_names_round_trip() {
        let all = Isa::available();
        assert_eq!(all[0], Isa::scalar());
        for isa in all {
            assert_eq!(Isa::by_name(isa.name()), Some(isa));
        }
        assert_eq!(Isa::by_name("no-such-isa"), None);
    }
}

//! Flags whose values are the core's named choices (`--method`, `--direction`, `--level`,
//! `--backend`): parsed by the core's `FromStr` (its spellings, aliases and error message),
//! with the core's names listed in `--help`, so the CLI keeps no list of its own.

use std::ffi::OsStr;
use std::marker::PhantomData;
use std::str::FromStr;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use xlalign_core::align::{Direction, Level, Method};
use xlalign_core::BackendChoice;

/// A core option enum: its values and their names.
pub trait Named: FromStr<Err = xlalign_core::Error> + Clone + Send + Sync + 'static {
    fn names() -> Vec<&'static str>;
}

macro_rules! named {
    ($($t:ident),*) => {$(
        impl Named for $t {
            fn names() -> Vec<&'static str> {
                $t::ALL.map($t::name).to_vec()
            }
        }
    )*};
}

named!(Method, Direction, Level, BackendChoice);

/// `value_parser = core::<Method>()` and so on.
pub fn core<T: Named>() -> CoreValue<T> {
    CoreValue(PhantomData)
}

#[derive(Clone)]
pub struct CoreValue<T>(PhantomData<T>);

impl<T: Named> TypedValueParser for CoreValue<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let flag = arg
            .map(|a| format!("--{} ", a.get_id()))
            .unwrap_or_default();
        let fail = |msg: String| {
            clap::Error::raw(ErrorKind::InvalidValue, format!("{flag}{msg}\n")).with_cmd(cmd)
        };
        let s = value
            .to_str()
            .ok_or_else(|| fail("is not valid UTF-8".into()))?;
        s.parse().map_err(|e: xlalign_core::Error| fail(e.detail()))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(T::names().into_iter().map(PossibleValue::new)))
    }
}

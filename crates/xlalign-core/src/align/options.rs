//! What to extract and how: the knobs of SimAlign and awesome-align in one serde struct, so the
//! CLI (flags), the web UI (JSON from JavaScript) and the model file's defaults all speak the
//! same names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Serde for an option enum goes through its `name` and `FromStr`, so JSON (the package, the
/// demo) accepts exactly the spellings the CLI accepts, aliases included, and an unknown name
/// gets the one message that lists the valid ones.
macro_rules! serde_by_name {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let name = <String as serde::Deserialize>::deserialize(d)?;
                name.parse()
                    .map_err(|e: $crate::error::Error| serde::de::Error::custom(e.detail()))
            }
        }
    };
}
pub(crate) use serde_by_name;

/// Softmax threshold that worked best for multilingual-e5-small at layer 7 (AER over five gold
/// sets; awesome-align's own 0.001 assumes mBERT's smaller hidden norms and lets many secondary
/// links through here).
pub const DEFAULT_SOFTMAX_THRESHOLD: f32 = 0.3;
/// entmax gives exact zeros, so any non-zero probability is a link (awesome-align's choice).
pub const DEFAULT_ENTMAX_THRESHOLD: f32 = 0.0;

/// How links are read off a similarity matrix.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
// serde goes through `name` (`serde_by_name!`); this attribute only tells the TypeScript
// declaration the same spellings (the tests compare them).
#[cfg_attr(feature = "ts", serde(rename_all = "lowercase"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Method {
    /// SimAlign "inter" (ArgMax): a cell that is the maximum of its row and of its column.
    Argmax,
    /// SimAlign IterMax: argmax, then repeated mutual argmax over rows/columns left unaligned.
    Itermax,
    /// SimAlign "mwmf": maximum-weight bipartite matching (one link per row and column).
    Match,
    /// awesome-align: softmax over each row and each column of the dot products, keep cells
    /// whose probability passes the threshold in both.
    #[default]
    Softmax,
    /// awesome-align's sparse variant: entmax-1.5 instead of softmax.
    Entmax,
}

impl Method {
    pub const ALL: [Method; 5] = [
        Method::Argmax,
        Method::Itermax,
        Method::Match,
        Method::Softmax,
        Method::Entmax,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Argmax => "argmax",
            Method::Itermax => "itermax",
            Method::Match => "match",
            Method::Softmax => "softmax",
            Method::Entmax => "entmax",
        }
    }

    /// Whether [`Direction`] applies: itermax and match are symmetric by construction.
    pub fn has_direction(self) -> bool {
        !matches!(self, Method::Itermax | Method::Match)
    }

    /// Softmax and entmax normalise dot products (the vectors' norms act as a temperature);
    /// the SimAlign methods compare cosine similarities.
    pub fn uses_dot_products(self) -> bool {
        matches!(self, Method::Softmax | Method::Entmax)
    }

    /// The threshold used when [`AlignOptions::threshold`] is not given.
    pub fn default_threshold(self) -> f32 {
        match self {
            Method::Entmax => DEFAULT_ENTMAX_THRESHOLD,
            _ => DEFAULT_SOFTMAX_THRESHOLD,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = Error;

    /// Accepts the names above, case-insensitively, plus the upstream names `inter`, `mwmf`
    /// and `entmax15`.
    fn from_str(s: &str) -> Result<Method> {
        match s.trim().to_ascii_lowercase().as_str() {
            "argmax" | "inter" => Ok(Method::Argmax),
            "itermax" => Ok(Method::Itermax),
            "match" | "mwmf" => Ok(Method::Match),
            "softmax" => Ok(Method::Softmax),
            "entmax" | "entmax15" => Ok(Method::Entmax),
            _ => Err(Error::Input(format!(
                "unknown alignment method `{s}` (use {})",
                one_of(Method::ALL.map(Method::name))
            ))),
        }
    }
}

serde_by_name!(Method);

/// `a, b or c`, for messages that list the valid names.
pub(crate) fn one_of(names: impl IntoIterator<Item = &'static str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// Which directions must agree for a link (argmax, softmax and entmax only; itermax and match
/// are symmetric by construction).
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
// serde goes through `name` (`serde_by_name!`); this attribute only tells the TypeScript
// declaration the same spellings (the tests compare them).
#[cfg_attr(feature = "ts", serde(rename_all = "lowercase"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Source→target and target→source agree (intersection): high precision.
    #[default]
    Both,
    /// Source→target only: each source unit picks its targets (SimAlign "fwd").
    Forward,
    /// Target→source only (SimAlign "rev").
    Reverse,
    /// Either direction (union): higher recall, lower precision.
    Union,
}

impl Direction {
    pub const ALL: [Direction; 4] = [
        Direction::Both,
        Direction::Forward,
        Direction::Reverse,
        Direction::Union,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Direction::Both => "both",
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
            Direction::Union => "union",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Direction {
    type Err = Error;

    fn from_str(s: &str) -> Result<Direction> {
        match s.trim().to_ascii_lowercase().as_str() {
            "both" | "inter" | "intersection" => Ok(Direction::Both),
            "forward" | "fwd" => Ok(Direction::Forward),
            "reverse" | "rev" | "backward" => Ok(Direction::Reverse),
            "union" => Ok(Direction::Union),
            _ => Err(Error::Input(format!(
                "unknown direction `{s}` (use {})",
                one_of(Direction::ALL.map(Direction::name))
            ))),
        }
    }
}

serde_by_name!(Direction);

/// The units links are extracted between.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
// serde goes through `name` (`serde_by_name!`); this attribute only tells the TypeScript
// declaration the same spellings (the tests compare them).
#[cfg_attr(feature = "ts", serde(rename_all = "kebab-case"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Level {
    /// Extract between subwords, then link two words when any of their subwords are linked
    /// (SimAlign `token_type="bpe"`, awesome-align). Best on four of five gold sets.
    #[default]
    Subword,
    /// Average each word's subword vectors first and extract between words
    /// (SimAlign `token_type="word"`).
    WordAverage,
}

impl Level {
    pub const ALL: [Level; 2] = [Level::Subword, Level::WordAverage];

    pub fn name(self) -> &'static str {
        match self {
            Level::Subword => "subword",
            Level::WordAverage => "word-average",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Level {
    type Err = Error;

    fn from_str(s: &str) -> Result<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "subword" | "bpe" => Ok(Level::Subword),
            "word-average" | "word_average" | "wordaverage" | "word" => Ok(Level::WordAverage),
            _ => Err(Error::Input(format!(
                "unknown alignment level `{s}` (use {})",
                one_of(Level::ALL.map(Level::name))
            ))),
        }
    }
}

serde_by_name!(Level);

/// Everything that decides which links come out of two sets of vectors.
///
/// JSON form (every field optional, camelCase):
/// `{"method":"softmax","threshold":0.3,"temperature":1,"iterations":2,"alpha":0.9,
///   "distortion":0,"direction":"both","level":"subword"}`.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
// In JavaScript these are the extraction part of `align`'s options.
#[cfg_attr(feature = "ts", tsify(rename = "ExtractOptions"))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AlignOptions {
    pub method: Method,
    /// Softmax/entmax only: a link needs a probability strictly above this, in every
    /// direction [`Self::direction`] asks for. `None` = the method's default
    /// ([`DEFAULT_SOFTMAX_THRESHOLD`], [`DEFAULT_ENTMAX_THRESHOLD`]).
    pub threshold: Option<f32>,
    /// Softmax/entmax only: dot products are divided by this before normalising. 1 is
    /// awesome-align; larger values flatten the distributions.
    pub temperature: f32,
    /// Itermax only: total rounds, the first being plain argmax (SimAlign's `max_count`, 2).
    pub iterations: usize,
    /// Itermax only: how much a cell whose row or column is already aligned is discounted in
    /// later rounds (SimAlign's `alpha_ratio`, 0.9).
    pub alpha: f32,
    /// SimAlign's distortion ratio in `[0, 1]`: similarities are multiplied by
    /// `1 − ratio·(i/(m−1) − j/(n−1))²`, favouring links near the diagonal. 0 turns it off.
    /// For softmax/entmax the same factor multiplies the unnormalised weights (its log is
    /// added to the logits), i.e. it acts as a position prior. Measured at 0.5 (layer 7): no
    /// change for softmax (the log-factor is small next to dot products of vectors with norm
    /// ≈ 9), ±0.5 AER for argmax on the European sets, 8 points worse on English–Hindi, whose
    /// word order differs; hence off by default.
    pub distortion: f32,
    pub direction: Direction,
    pub level: Level,
}

impl Default for AlignOptions {
    fn default() -> Self {
        AlignOptions {
            method: Method::Softmax,
            threshold: None,
            temperature: 1.0,
            iterations: 2,
            alpha: 0.9,
            distortion: 0.0,
            direction: Direction::Both,
            level: Level::Subword,
        }
    }
}

impl AlignOptions {
    pub fn new(method: Method) -> Self {
        AlignOptions {
            method,
            ..Default::default()
        }
    }

    /// The threshold softmax/entmax will use.
    pub fn effective_threshold(&self) -> f32 {
        self.threshold
            .unwrap_or_else(|| self.method.default_threshold())
    }

    /// Checks ranges and combinations, with messages that name the field and the fix.
    pub fn validate(&self) -> Result<()> {
        if let Some(t) = self.threshold {
            if !t.is_finite() || !(0.0..1.0).contains(&t) {
                return Err(Error::Input(format!(
                    "threshold must be at least 0 and below 1 (it is compared with probabilities), got {t}"
                )));
            }
        }
        if !self.temperature.is_finite() || self.temperature <= 0.0 {
            return Err(Error::Input(format!(
                "temperature must be a positive number, got {}",
                self.temperature
            )));
        }
        if self.iterations == 0 {
            return Err(Error::Input(
                "iterations must be at least 1 (1 = plain argmax)".into(),
            ));
        }
        if !self.alpha.is_finite() || !(0.0..=1.0).contains(&self.alpha) {
            return Err(Error::Input(format!(
                "alpha must be between 0 and 1, got {}",
                self.alpha
            )));
        }
        if !self.distortion.is_finite() || !(0.0..=1.0).contains(&self.distortion) {
            return Err(Error::Input(format!(
                "distortion must be between 0 (off) and 1, got {}",
                self.distortion
            )));
        }
        if !self.method.has_direction() && self.direction != Direction::Both {
            return Err(Error::Input(format!(
                "direction `{}` does not apply to {} (it is symmetric); use it with argmax, softmax or entmax",
                self.direction, self.method
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip() {
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>().unwrap(), m);
            assert_eq!(m.to_string(), m.name());
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
        }
        assert_eq!("MWMF".parse::<Method>().unwrap(), Method::Match);
        assert_eq!(" inter ".parse::<Method>().unwrap(), Method::Argmax);
        let err = "bogus".parse::<Method>().unwrap_err().to_string();
        assert!(
            err.contains("`bogus`") && err.contains("argmax, itermax, match, softmax or entmax"),
            "{err}"
        );
        // JSON takes the same spellings and gives the same message.
        assert_eq!(
            serde_json::from_str::<Method>("\"MWMF\"").unwrap(),
            Method::Match
        );
        let err = serde_json::from_str::<Method>("\"bogus\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`bogus`") && err.contains("argmax, itermax, match, softmax or entmax"),
            "{err}"
        );
        assert!(Method::Argmax.has_direction() && Method::Softmax.has_direction());
        assert!(!Method::Itermax.has_direction() && !Method::Match.has_direction());
    }

    #[test]
    fn direction_and_level_parse() {
        assert_eq!("rev".parse::<Direction>().unwrap(), Direction::Reverse);
        assert_eq!("word-average".parse::<Level>().unwrap(), Level::WordAverage);
        let e = "sideways".parse::<Direction>().unwrap_err().to_string();
        assert!(e.contains("both, forward, reverse or union"), "{e}");
        let e = "char".parse::<Level>().unwrap_err().to_string();
        assert!(e.contains("subword or word-average"), "{e}");
        for d in Direction::ALL {
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(serde_json::from_str::<Direction>(&json).unwrap(), d);
        }
        assert_eq!(
            serde_json::from_str::<Level>("\"word\"").unwrap(),
            Level::WordAverage
        );
        assert_eq!(
            serde_json::to_string(&Level::WordAverage).unwrap(),
            "\"word-average\""
        );
    }

    #[test]
    fn json_is_camel_case_and_partial() {
        let o: AlignOptions =
            serde_json::from_str(r#"{"method":"itermax","iterations":3}"#).unwrap();
        assert_eq!(o.method, Method::Itermax);
        assert_eq!(o.iterations, 3);
        assert_eq!(o.alpha, 0.9);
        let full = serde_json::to_value(AlignOptions::default()).unwrap();
        for key in [
            "method",
            "threshold",
            "temperature",
            "iterations",
            "alpha",
            "distortion",
            "direction",
            "level",
        ] {
            assert!(full.get(key).is_some(), "missing {key} in {full}");
        }
        let back: AlignOptions = serde_json::from_value(full).unwrap();
        assert_eq!(back, AlignOptions::default());
        // A typo must not be silently ignored.
        assert!(serde_json::from_str::<AlignOptions>(r#"{"treshold":0.2}"#).is_err());
    }

    #[test]
    fn thresholds_default_per_method() {
        assert_eq!(
            AlignOptions::new(Method::Softmax).effective_threshold(),
            0.3
        );
        assert_eq!(AlignOptions::new(Method::Entmax).effective_threshold(), 0.0);
        let o = AlignOptions {
            threshold: Some(0.1),
            ..AlignOptions::new(Method::Entmax)
        };
        assert_eq!(o.effective_threshold(), 0.1);
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(AlignOptions::default().validate().is_ok());
        let bad = |o: AlignOptions, word: &str| {
            let e = o.validate().unwrap_err();
            assert!(matches!(e, Error::Input(_)));
            assert!(e.to_string().contains(word), "{e}");
        };
        bad(
            AlignOptions {
                threshold: Some(1.0),
                ..Default::default()
            },
            "threshold",
        );
        bad(
            AlignOptions {
                threshold: Some(f32::NAN),
                ..Default::default()
            },
            "threshold",
        );
        bad(
            AlignOptions {
                threshold: Some(-0.1),
                ..Default::default()
            },
            "threshold",
        );
        bad(
            AlignOptions {
                temperature: 0.0,
                ..Default::default()
            },
            "temperature",
        );
        bad(
            AlignOptions {
                iterations: 0,
                ..Default::default()
            },
            "iterations",
        );
        bad(
            AlignOptions {
                alpha: 1.5,
                ..Default::default()
            },
            "alpha",
        );
        bad(
            AlignOptions {
                distortion: -0.5,
                ..Default::default()
            },
            "distortion",
        );
        bad(
            AlignOptions {
                distortion: f32::INFINITY,
                ..Default::default()
            },
            "distortion",
        );
        bad(
            AlignOptions {
                direction: Direction::Forward,
                ..AlignOptions::new(Method::Match)
            },
            "match",
        );
        bad(
            AlignOptions {
                direction: Direction::Union,
                ..AlignOptions::new(Method::Itermax)
            },
            "itermax",
        );
        assert!(AlignOptions {
            direction: Direction::Union,
            ..AlignOptions::new(Method::Argmax)
        }
        .validate()
        .is_ok());
    }
}

//! The share link: the pair and the settings as query parameters
//! (`?src=…&tgt=…&method=argmax&layer=8`), so a copied URL reproduces the view. Only values
//! that differ from the defaults are written, which keeps links short and lets a link follow
//! the model's recommendations when those change.
//!
//! Encoding the parameters (percent-escapes) is the browser's `URLSearchParams`; this module
//! decides which keys mean what and checks the values.

use xlalign_core::align::{Direction, Level, Method};

use xlalign_core::BackendChoice;

use crate::settings::Settings;

/// Everything a link carries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shared {
    pub src: String,
    pub tgt: String,
    pub settings: Settings,
    pub backend: BackendChoice,
}

/// Longest text a link carries (a URL of a few kilobytes works everywhere).
pub const MAX_SHARED_CHARS: usize = 1000;

pub fn to_params(s: &Shared) -> Vec<(&'static str, String)> {
    let d = Settings::default();
    let st = &s.settings;
    let mut out = Vec::new();
    let clip = |t: &str| t.chars().take(MAX_SHARED_CHARS).collect::<String>();
    if !s.src.is_empty() {
        out.push(("src", clip(&s.src)));
    }
    if !s.tgt.is_empty() {
        out.push(("tgt", clip(&s.tgt)));
    }
    if st.method != d.method {
        out.push(("method", st.method.to_string()));
    }
    if let Some(l) = st.layer {
        out.push(("layer", l.to_string()));
    }
    if let Some(t) = st.threshold {
        out.push(("threshold", t.to_string()));
    }
    if st.direction != d.direction {
        out.push(("direction", st.direction.to_string()));
    }
    if st.level != d.level {
        out.push(("level", st.level.to_string()));
    }
    if st.distortion != d.distortion {
        out.push(("distortion", st.distortion.to_string()));
    }
    if s.backend != BackendChoice::Auto {
        out.push(("backend", s.backend.web_name().to_string()));
    }
    out
}

/// Reads the parameters back. Values that do not parse are skipped with a message (a link
/// from a newer or edited version still opens); unknown keys are ignored.
pub fn from_params<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (Shared, Vec<String>) {
    let mut s = Shared::default();
    let mut problems = Vec::new();
    for (k, v) in params {
        let st = &mut s.settings;
        let ok = match k {
            "src" => {
                s.src = v.to_string();
                true
            }
            "tgt" => {
                s.tgt = v.to_string();
                true
            }
            "method" => v.parse::<Method>().map(|m| st.method = m).is_ok(),
            "layer" => v.parse::<usize>().map(|l| st.layer = Some(l)).is_ok(),
            "threshold" => match v.parse::<f32>() {
                Ok(t) if (0.0..1.0).contains(&t) => {
                    st.threshold = Some(t);
                    true
                }
                _ => false,
            },
            "direction" => v.parse::<Direction>().map(|d| st.direction = d).is_ok(),
            "level" => v.parse::<Level>().map(|l| st.level = l).is_ok(),
            "distortion" => match v.parse::<f32>() {
                Ok(x) if (0.0..=1.0).contains(&x) => {
                    st.distortion = x;
                    true
                }
                _ => false,
            },
            "backend" => v.parse::<BackendChoice>().map(|b| s.backend = b).is_ok(),
            _ => true,
        };
        if !ok {
            problems.push(format!(
                "the link's {k} value “{}” is not valid and was ignored",
                crate::pairs::preview(v)
            ));
        }
    }
    (s, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_make_an_empty_query() {
        assert!(to_params(&Shared::default()).is_empty());
    }

    #[test]
    fn round_trip() {
        let s = Shared {
            src: "Der Hund bellt.".into(),
            tgt: "The dog barks.".into(),
            settings: Settings {
                method: Method::Itermax,
                layer: Some(9),
                threshold: Some(0.25),
                direction: Direction::Union,
                level: Level::WordAverage,
                distortion: 0.5,
            },
            backend: BackendChoice::Cpu,
        };
        let p = to_params(&s);
        let (back, problems) = from_params(p.iter().map(|(k, v)| (*k, v.as_str())));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(back, s);
    }

    #[test]
    fn bad_values_are_reported_and_skipped() {
        let (s, problems) = from_params([
            ("method", "magic"),
            ("layer", "-1"),
            ("threshold", "1.5"),
            ("src", "a"),
            ("utm", "x"),
        ]);
        assert_eq!(s.src, "a");
        assert_eq!(s.settings, Settings::default());
        assert_eq!(problems.len(), 3);
        assert!(
            problems[0].contains("method") && problems[0].contains("magic"),
            "{problems:?}"
        );
    }

    #[test]
    fn long_text_is_clipped() {
        let s = Shared {
            src: "x".repeat(MAX_SHARED_CHARS + 10),
            ..Default::default()
        };
        assert_eq!(to_params(&s)[0].1.len(), MAX_SHARED_CHARS);
    }
}

//! What the controls set, and how it becomes the core's [`AlignRequest`] (resolved by the
//! core exactly as for `xlalign align`, so the page and the CLI give the same links for the
//! same flags).

use serde::{Deserialize, Serialize};
use xlalign_core::align::{AlignOptions, Direction, Level, Method};
use xlalign_core::request::{AlignRequest, Recommendation};
use xlalign_core::BackendChoice;

/// The alignment controls. Only `layer` decides encoding; everything else is extraction, which
/// the worker redoes on its cached hidden states without running the encoder.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    pub method: Method,
    /// Hidden layer (`None` = the model's recommendation).
    pub layer: Option<usize>,
    /// Softmax/entmax probability threshold (`None` = the method's recommendation).
    pub threshold: Option<f32>,
    pub direction: Direction,
    pub level: Level,
    /// SimAlign's position prior in [0, 1]; 0 = off.
    pub distortion: f32,
}

impl Default for Settings {
    /// The core's defaults ([`AlignOptions::default`]).
    fn default() -> Self {
        let d = AlignOptions::default();
        Settings {
            method: d.method,
            layer: None,
            threshold: None,
            direction: d.direction,
            level: d.level,
            distortion: d.distortion,
        }
    }
}

impl Settings {
    /// The controls as the core's request: unset values take the model's recommendation, as
    /// in `xlalign align`, so the page and the CLI give the same links for the same flags.
    /// Itermax and match are symmetric: the direction control's value is not sent for them
    /// (the core refuses one) but kept for when the user switches back.
    pub fn request(&self) -> AlignRequest {
        AlignRequest {
            layer: self.layer,
            method: Some(self.method),
            threshold: self.threshold,
            direction: self.method.has_direction().then_some(self.direction),
            level: Some(self.level),
            distortion: Some(self.distortion),
            ..Default::default()
        }
    }

    /// The extraction options for these settings.
    pub fn align_options(&self, rec: &Recommendation) -> xlalign_core::Result<AlignOptions> {
        self.request().align_options(rec)
    }

    pub fn method_has_direction(&self) -> bool {
        self.method.has_direction()
    }

    /// The threshold extraction will use (for showing on the slider).
    pub fn effective_threshold(&self, rec: &Recommendation) -> f32 {
        match self.align_options(rec) {
            Ok(o) => o.effective_threshold(),
            Err(_) => self
                .threshold
                .unwrap_or_else(|| self.method.default_threshold()),
        }
    }

    pub fn effective_layer(&self, rec: &Recommendation) -> usize {
        self.layer.unwrap_or(rec.layer)
    }

    /// Equivalent `xlalign align` flags (shown under the controls, so a result can be
    /// reproduced on the command line).
    pub fn cli_flags(&self, rec: &Recommendation) -> String {
        let mut s = format!(
            "--words raw --method {} --layer {}",
            self.method,
            self.effective_layer(rec)
        );
        if self.method.uses_dot_products() {
            s += &format!(" --threshold {}", self.effective_threshold(rec));
        }
        let o = self.request();
        if let Some(l) = o.level.filter(|&l| l != Level::Subword) {
            s += &format!(" --level {l}");
        }
        if let Some(d) = o.direction.filter(|&d| d != Direction::Both) {
            s += &format!(" --direction {d}");
        }
        if self.distortion != 0.0 {
            s += &format!(" --distortion {}", self.distortion);
        }
        s
    }
}

/// What the backend menu shows for each choice (its values are [`BackendChoice::web_name`]).
pub fn backend_label(b: BackendChoice) -> &'static str {
    match b {
        BackendChoice::Auto => "Automatic",
        BackendChoice::Gpu => "WebGPU",
        BackendChoice::Cpu => "CPU (WebAssembly)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How the controls map to the core's request; the resolution itself is tested in the
    /// core (`xlalign_core::request`).
    fn model() -> Recommendation {
        let options = AlignOptions::new(Method::Softmax);
        Recommendation {
            layer: 7,
            layers: 12,
            options,
        }
    }

    #[test]
    fn symmetric_methods_ignore_direction() {
        let s = Settings {
            method: Method::Match,
            direction: Direction::Forward,
            ..Default::default()
        };
        let o = s.align_options(&model()).unwrap();
        assert_eq!(o.direction, Direction::Both);
        let s = Settings {
            method: Method::Argmax,
            direction: Direction::Union,
            ..Default::default()
        };
        assert_eq!(
            s.align_options(&model()).unwrap().direction,
            Direction::Union
        );
    }

    #[test]
    fn a_threshold_shows_on_the_slider() {
        let s = Settings {
            method: Method::Entmax,
            ..Default::default()
        };
        assert_eq!(s.effective_threshold(&model()), 0.0);
        let s = Settings {
            threshold: Some(0.1),
            ..s
        };
        assert_eq!(s.effective_threshold(&model()), 0.1);
    }

    #[test]
    fn cli_flags_name_every_non_default() {
        let d = model();
        assert_eq!(
            Settings::default().cli_flags(&d),
            "--words raw --method softmax --layer 7 --threshold 0.3"
        );
        let s = Settings {
            method: Method::Argmax,
            layer: Some(9),
            direction: Direction::Reverse,
            ..Default::default()
        };
        assert_eq!(
            s.cli_flags(&d),
            "--words raw --method argmax --layer 9 --direction reverse"
        );
    }
}

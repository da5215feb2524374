//! What the controls set, and how it becomes the core's [`AlignOptions`].
//!
//! Unset values mean "the model's recommendation", resolved exactly as `xlalign align` does,
//! so the page and the CLI give the same links for the same flags.

use serde::{Deserialize, Serialize};
use xlalign_core::align::{AlignOptions, Direction, Level, Method};

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
    fn default() -> Self {
        Settings {
            method: Method::Softmax,
            layer: None,
            threshold: None,
            direction: Direction::Both,
            level: Level::Subword,
            distortion: 0.0,
        }
    }
}

/// What the loaded model recommends (sent by the worker once the model is ready).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelDefaults {
    pub layer: usize,
    /// Number of transformer blocks: layers 0..=layers exist.
    pub layers: usize,
    pub options: AlignOptions,
}

impl Settings {
    /// The extraction options for these settings, as the CLI builds them: the model's
    /// recommended threshold and temperature belong to its recommended method, another method
    /// starts from its own defaults; an explicit threshold wins.
    pub fn align_options(&self, model: &AlignOptions) -> AlignOptions {
        let mut o = if self.method == model.method {
            *model
        } else {
            AlignOptions::new(self.method)
        };
        if self.threshold.is_some() {
            o.threshold = self.threshold;
        }
        o.level = self.level;
        // Itermax and match are symmetric: a direction does not apply to them (the core refuses
        // one), so the control's value is kept for when the user switches back.
        o.direction = if self.method_has_direction() {
            self.direction
        } else {
            Direction::Both
        };
        o.distortion = self.distortion;
        o
    }

    pub fn method_has_direction(&self) -> bool {
        !matches!(self.method, Method::Itermax | Method::Match)
    }

    /// The threshold extraction will use (for showing on the slider).
    pub fn effective_threshold(&self, model: &AlignOptions) -> f32 {
        self.align_options(model).effective_threshold()
    }

    pub fn effective_layer(&self, defaults: &ModelDefaults) -> usize {
        self.layer.unwrap_or(defaults.layer)
    }

    /// Equivalent `xlalign align` flags (shown under the controls, so a result can be
    /// reproduced on the command line).
    pub fn cli_flags(&self, defaults: &ModelDefaults) -> String {
        let o = self.align_options(&defaults.options);
        let mut s = format!(
            "--words raw --method {} --layer {}",
            o.method,
            self.effective_layer(defaults)
        );
        if o.method.uses_dot_products() {
            s += &format!(" --threshold {}", o.effective_threshold());
        }
        if o.level != Level::Subword {
            s += &format!(" --level {}", o.level);
        }
        if o.direction != Direction::Both {
            s += &format!(" --direction {}", o.direction);
        }
        if o.distortion != 0.0 {
            s += &format!(" --distortion {}", o.distortion);
        }
        s
    }
}

/// Which compute backend the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendPref {
    /// A hardware WebGPU adapter if there is one, else the CPU (the worker says why).
    #[default]
    Auto,
    Webgpu,
    Cpu,
}

impl BackendPref {
    pub const ALL: [BackendPref; 3] = [BackendPref::Auto, BackendPref::Webgpu, BackendPref::Cpu];

    pub fn name(self) -> &'static str {
        match self {
            BackendPref::Auto => "auto",
            BackendPref::Webgpu => "webgpu",
            BackendPref::Cpu => "cpu",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            BackendPref::Auto => "Automatic",
            BackendPref::Webgpu => "WebGPU",
            BackendPref::Cpu => "CPU (WebAssembly)",
        }
    }

    pub fn parse(s: &str) -> Option<BackendPref> {
        BackendPref::ALL.into_iter().find(|b| b.name() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> AlignOptions {
        AlignOptions {
            threshold: Some(0.3),
            temperature: 3.0,
            ..AlignOptions::new(Method::Softmax)
        }
    }

    #[test]
    fn model_method_keeps_model_temperature_and_threshold() {
        let o = Settings::default().align_options(&model());
        assert_eq!(o.temperature, 3.0);
        assert_eq!(o.effective_threshold(), 0.3);
        assert!(o.validate().is_ok());
    }

    #[test]
    fn other_method_starts_from_its_own_defaults() {
        let s = Settings {
            method: Method::Entmax,
            ..Default::default()
        };
        let o = s.align_options(&model());
        assert_eq!(o.temperature, 1.0);
        assert_eq!(o.effective_threshold(), 0.0);
        let s = Settings {
            threshold: Some(0.1),
            ..s
        };
        assert_eq!(s.align_options(&model()).effective_threshold(), 0.1);
    }

    #[test]
    fn symmetric_methods_ignore_direction() {
        let s = Settings {
            method: Method::Match,
            direction: Direction::Forward,
            ..Default::default()
        };
        let o = s.align_options(&model());
        assert_eq!(o.direction, Direction::Both);
        assert!(o.validate().is_ok());
        let s = Settings {
            method: Method::Argmax,
            direction: Direction::Union,
            ..Default::default()
        };
        assert_eq!(s.align_options(&model()).direction, Direction::Union);
    }

    #[test]
    fn cli_flags_name_every_non_default() {
        let d = ModelDefaults {
            layer: 7,
            layers: 12,
            options: model(),
        };
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

    #[test]
    fn backend_names_round_trip() {
        for b in BackendPref::ALL {
            assert_eq!(BackendPref::parse(b.name()), Some(b));
        }
        assert_eq!(BackendPref::parse("tpu"), None);
    }
}

//! The options of one alignment call as a user gives them, and the one rule that turns them
//! into what the pipeline runs.
//!
//! The CLI's flags, the package's options object and the demo's controls all fill an
//! [`AlignRequest`]. Its serde names are the package's option keys; an unknown key is an
//! error that lists the known ones (taken from this type). What is left unset takes the
//! model's [`Recommendation`] (layer; method with its threshold and temperature) or the
//! core's defaults ([`AlignOptions::default`], [`EncodeOptions::default`]).

use serde::{Deserialize, Serialize};

use crate::align::{AlignOptions, Direction, Level, Method, WordOptions};
use crate::error::{Error, Result};
use crate::model::{Model, ModelDefaults};
use crate::pipeline::EncodeOptions;

/// What a model recommends, in the options' terms.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// The layer to align with.
    pub layer: usize,
    /// Number of transformer blocks: layers 0..=layers exist.
    pub layers: usize,
    /// The recommended method with its threshold and temperature.
    pub options: AlignOptions,
}

impl Recommendation {
    /// Read from the model file's defaults. A method name this version does not know is an
    /// error (a model file error), never a silent fallback to another method.
    pub fn of(model: &Model) -> Result<Recommendation> {
        Recommendation::from_defaults(&model.defaults, model.config.layers)
    }

    /// As [`Self::of`], from the defaults of a model of `layers` blocks.
    pub fn from_defaults(d: &ModelDefaults, layers: usize) -> Result<Recommendation> {
        let method: Method = d.align_method.parse().map_err(|e| match e {
            Error::Input(m) => Error::Metadata(format!("the recommended alignment method: {m}")),
            other => other,
        })?;
        let mut options = AlignOptions::new(method);
        if method.uses_dot_products() {
            options.threshold = Some(d.align_threshold);
            options.temperature = d.align_temperature;
        }
        Ok(Recommendation {
            layer: d.align_layer,
            layers,
            options,
        })
    }

    /// `layer` if the model has it.
    pub fn check_layer(&self, layer: usize) -> Result<usize> {
        check_layer(layer, self.layers)
    }
}

/// `layer` if a model of `layers` blocks has it (0 is the embedding output).
pub fn check_layer(layer: usize, layers: usize) -> Result<usize> {
    if layer > layers {
        return Err(Error::Input(format!(
            "layer {layer} does not exist: choose a layer from 0 to {layers}"
        )));
    }
    Ok(layer)
}

/// Every option of an alignment call, each optional. JSON form (camelCase, the package's
/// `align` options): `{"layer":7,"pretokenized":false,"sentenceCosine":true,
/// "words":{"cjkJoin":"auto","kana":"char"},"method":"softmax","threshold":0.3,
/// "temperature":1,"iterations":2,"alpha":0.9,"distortion":0,"direction":"both",
/// "level":"subword"}`.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
// In JavaScript this is the options object of `align` (the npm package's `AlignOptions`).
#[cfg_attr(feature = "ts", tsify(rename = "AlignOptions"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AlignRequest {
    /// See [`EncodeOptions::layer`]; unset = the model's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretokenized: Option<bool>,
    /// Unset = [`EncodeOptions::default`]'s (on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentence_cosine: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words: Option<WordOptions>,
    /// Unset = the model's method, with its threshold and temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distortion: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
}

/// The two parts of a request: what decides the encoding ([`EncodeOptions`]: changing it
/// means running the encoder again) and what only decides the extraction from the encoded
/// vectors ([`AlignOptions`]). A front end that encodes once and extracts many times (the
/// package's `encode` and `extract`) takes each part in its own call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Encode,
    Extract,
}

impl Part {
    /// This part's keys: the serde names of its pipeline type, so they follow its fields
    /// (and [`AlignRequest`] has exactly the keys of both, see the tests).
    pub fn keys(self) -> Vec<String> {
        let value = match self {
            Part::Encode => serde_json::to_value(EncodeOptions::default()),
            Part::Extract => serde_json::to_value(AlignOptions::default()),
        };
        match value {
            Ok(serde_json::Value::Object(m)) => m.into_iter().map(|(k, _)| k).collect(),
            _ => Vec::new(),
        }
    }

    /// The other part.
    pub fn other(self) -> Part {
        match self {
            Part::Encode => Part::Extract,
            Part::Extract => Part::Encode,
        }
    }
}

impl AlignRequest {
    /// The keys (serde names) this request sets.
    pub fn set_keys(&self) -> Vec<String> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m.into_iter().map(|(k, _)| k).collect(),
            _ => Vec::new(),
        }
    }

    /// The keys set here that belong to `part`, in [`Self::set_keys`]' order.
    pub fn set_keys_of(&self, part: Part) -> Vec<String> {
        let keys = part.keys();
        self.set_keys()
            .into_iter()
            .filter(|k| keys.contains(k))
            .collect()
    }

    /// The options of `part` only (the others unset): a request split for an `encode` call
    /// and the `extract` calls on its result.
    pub fn part(&self, part: Part) -> AlignRequest {
        let keep = part.keys();
        let Ok(serde_json::Value::Object(mut m)) = serde_json::to_value(self) else {
            return AlignRequest::default();
        };
        m.retain(|k, _| keep.contains(k));
        serde_json::from_value(serde_json::Value::Object(m)).unwrap_or_default()
    }

    /// Refuses a key of the other part, saying where it goes: for front ends whose
    /// `encode` call takes only [`Part::Encode`] and whose `extract` only [`Part::Extract`].
    pub fn check_only(&self, part: Part) -> Result<()> {
        match self.set_keys_of(part.other()).first() {
            None => Ok(()),
            Some(k) => Err(Error::Input(match part {
                Part::Encode => format!(
                    "`{k}` is an extraction option: pass it to extract() on the encoded pair"
                ),
                Part::Extract => format!(
                    "`{k}` changes the encoding, which extract() reuses: pass it to encode() \
                     and extract from the new encoding"
                ),
            })),
        }
    }

    /// The extraction options, checked ([`AlignOptions::validate`]). The model's threshold
    /// and temperature belong to its method: asking for another method starts from that
    /// method's own defaults ([`AlignOptions::new`]). A value set here always wins.
    pub fn align_options(&self, rec: &Recommendation) -> Result<AlignOptions> {
        let mut o = match self.method {
            Some(m) if m != rec.options.method => AlignOptions::new(m),
            _ => rec.options,
        };
        if self.threshold.is_some() {
            o.threshold = self.threshold;
        }
        let set = |field: &mut f32, v: Option<f32>| *field = v.unwrap_or(*field);
        set(&mut o.temperature, self.temperature);
        set(&mut o.alpha, self.alpha);
        set(&mut o.distortion, self.distortion);
        o.iterations = self.iterations.unwrap_or(o.iterations);
        o.direction = self.direction.unwrap_or(o.direction);
        o.level = self.level.unwrap_or(o.level);
        o.validate()?;
        Ok(o)
    }

    /// The encoding options, with the layer resolved and checked.
    pub fn encode_options(&self, rec: &Recommendation) -> Result<EncodeOptions> {
        let d = EncodeOptions::default();
        Ok(EncodeOptions {
            layer: Some(rec.check_layer(self.layer.unwrap_or(rec.layer))?),
            pretokenized: self.pretokenized.unwrap_or(d.pretokenized),
            sentence_cosine: self.sentence_cosine.unwrap_or(d.sentence_cosine),
            words: self.words.unwrap_or(d.words),
        })
    }

    /// Both, as the pipeline takes them.
    pub fn resolve(&self, rec: &Recommendation) -> Result<(EncodeOptions, AlignOptions)> {
        Ok((self.encode_options(rec)?, self.align_options(rec)?))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_request_splits_into_its_two_parts() {
        let r = AlignRequest {
            layer: Some(5),
            sentence_cosine: Some(false),
            method: Some(Method::Itermax),
            threshold: Some(0.2),
            level: Some(Level::WordAverage),
            ..Default::default()
        };
        let enc = r.part(Part::Encode);
        let ext = r.part(Part::Extract);
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(sorted(enc.set_keys()), ["layer", "sentenceCosine"]);
        assert_eq!(sorted(ext.set_keys()), ["level", "method", "threshold"]);
        assert_eq!(
            (enc.layer, enc.sentence_cosine),
            (r.layer, r.sentence_cosine)
        );
        assert_eq!(
            (ext.method, ext.threshold, ext.level),
            (r.method, r.threshold, r.level)
        );
        assert_eq!(
            AlignRequest::default().part(Part::Extract),
            AlignRequest::default()
        );
    }

    use std::collections::BTreeSet;

    use super::*;

    fn rec() -> Recommendation {
        Recommendation {
            layer: 7,
            layers: 12,
            options: AlignOptions {
                threshold: Some(0.3),
                temperature: 3.0,
                ..AlignOptions::new(Method::Softmax)
            },
        }
    }

    #[test]
    fn unset_means_the_model_and_the_core_defaults() {
        let (enc, o) = AlignRequest::default().resolve(&rec()).unwrap();
        assert_eq!(o, rec().options);
        assert_eq!(
            enc,
            EncodeOptions {
                layer: Some(7),
                ..EncodeOptions::default()
            }
        );
        assert!(
            enc.sentence_cosine,
            "the pooled cosine is on unless turned off"
        );
    }

    #[test]
    fn the_models_threshold_belongs_to_its_method() {
        let same = AlignRequest {
            method: Some(Method::Softmax),
            ..Default::default()
        };
        assert_eq!(same.align_options(&rec()).unwrap().temperature, 3.0);
        let other = AlignRequest {
            method: Some(Method::Entmax),
            ..Default::default()
        };
        let o = other.align_options(&rec()).unwrap();
        assert_eq!((o.temperature, o.effective_threshold()), (1.0, 0.0));
        let o = AlignRequest {
            threshold: Some(0.1),
            temperature: Some(2.0),
            ..other
        }
        .align_options(&rec())
        .unwrap();
        assert_eq!((o.temperature, o.effective_threshold()), (2.0, 0.1));
    }

    #[test]
    fn every_set_value_wins() {
        let r = AlignRequest {
            layer: Some(0),
            pretokenized: Some(true),
            sentence_cosine: Some(false),
            method: Some(Method::Itermax),
            iterations: Some(3),
            alpha: Some(0.5),
            distortion: Some(0.25),
            level: Some(Level::WordAverage),
            ..Default::default()
        };
        let (enc, o) = r.resolve(&rec()).unwrap();
        assert_eq!(enc.layer, Some(0));
        assert!(enc.pretokenized && !enc.sentence_cosine);
        assert_eq!(o.method, Method::Itermax);
        assert_eq!((o.iterations, o.alpha, o.distortion), (3, 0.5, 0.25));
        assert_eq!(o.level, Level::WordAverage);
    }

    #[test]
    fn bad_values_are_errors() {
        let layer = AlignRequest {
            layer: Some(13),
            ..Default::default()
        };
        let e = layer.resolve(&rec()).unwrap_err().to_string();
        assert!(e.contains("layer 13") && e.contains("0 to 12"), "{e}");
        let direction = AlignRequest {
            method: Some(Method::Match),
            direction: Some(Direction::Forward),
            ..Default::default()
        };
        assert!(direction.align_options(&rec()).is_err());
        let threshold = AlignRequest {
            threshold: Some(1.5),
            ..Default::default()
        };
        assert!(threshold.align_options(&rec()).is_err());
    }

    #[test]
    fn json_names_unknown_methods_and_keys() {
        let r: AlignRequest =
            serde_json::from_str(r#"{"method":"mwmf","sentenceCosine":false}"#).unwrap();
        assert_eq!(r.method, Some(Method::Match));
        let e = serde_json::from_str::<AlignRequest>(r#"{"method":"magic"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`magic`") && e.contains("argmax, itermax, match, softmax or entmax"),
            "{e}"
        );
        let e = serde_json::from_str::<AlignRequest>(r#"{"methd":"argmax"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("methd") && e.contains("sentenceCosine"), "{e}");
    }

    /// The request has a key for every option the pipeline takes, and no other.
    #[test]
    fn keys_are_the_pipelines_options() {
        let keys = |v: serde_json::Value| -> BTreeSet<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        let mut options = keys(serde_json::to_value(EncodeOptions::default()).unwrap());
        options.extend(keys(serde_json::to_value(AlignOptions::default()).unwrap()));
        let full = AlignRequest {
            layer: Some(1),
            pretokenized: Some(true),
            sentence_cosine: Some(true),
            words: Some(WordOptions::default()),
            method: Some(Method::Argmax),
            threshold: Some(0.1),
            temperature: Some(1.0),
            iterations: Some(1),
            alpha: Some(0.5),
            distortion: Some(0.0),
            direction: Some(Direction::Both),
            level: Some(Level::Subword),
        };
        assert_eq!(keys(serde_json::to_value(full).unwrap()), options);
    }

    /// The parts split the request's keys: each key in exactly one.
    #[test]
    fn parts_split_the_keys() {
        let (enc, ext) = (Part::Encode.keys(), Part::Extract.keys());
        assert!(enc.contains(&"sentenceCosine".to_string()) && enc.contains(&"words".into()));
        assert!(ext.contains(&"method".to_string()) && ext.contains(&"level".into()));
        assert!(enc.iter().all(|k| !ext.contains(k)), "{enc:?} {ext:?}");
        assert_eq!(Part::Encode.other(), Part::Extract);
        let r: AlignRequest =
            serde_json::from_str(r#"{"layer":3,"method":"argmax","threshold":0.2}"#).unwrap();
        assert_eq!(r.set_keys_of(Part::Encode), ["layer"]);
        assert_eq!(r.set_keys_of(Part::Extract), ["method", "threshold"]);
        assert!(AlignRequest::default().set_keys().is_empty());
    }

    /// The TypeScript declarations spell the option values as serde reads them.
    #[cfg(feature = "ts")]
    #[test]
    fn typescript_names_are_the_serde_names() {
        use crate::BackendChoice;
        use tsify::Tsify;
        let quoted = |n: &str| format!("\"{n}\"");
        for m in Method::ALL {
            assert!(Method::DECL.contains(&quoted(m.name())), "{}", Method::DECL);
        }
        for d in Direction::ALL {
            assert!(
                Direction::DECL.contains(&quoted(d.name())),
                "{}",
                Direction::DECL
            );
        }
        for l in Level::ALL {
            assert!(Level::DECL.contains(&quoted(l.name())), "{}", Level::DECL);
        }
        for b in BackendChoice::ALL {
            assert!(
                BackendChoice::DECL.contains(&quoted(b.web_name())),
                "{}",
                BackendChoice::DECL
            );
        }
        // `AlignOptions` in TypeScript is the request, with every key optional.
        assert!(AlignRequest::DECL.contains("interface AlignOptions"));
        for k in Part::Encode.keys().iter().chain(&Part::Extract.keys()) {
            assert!(
                AlignRequest::DECL.contains(&format!("{k}?:")),
                "{k}: {}",
                AlignRequest::DECL
            );
        }
    }

    #[test]
    fn the_model_files_recommendation() {
        let mut d = ModelDefaults {
            passage_prefix: "passage: ".into(),
            query_prefix: "query: ".into(),
            align_layer: 7,
            align_method: "softmax".into(),
            align_threshold: 0.3,
            align_temperature: 3.0,
        };
        assert_eq!(Recommendation::from_defaults(&d, 12).unwrap(), rec());
        d.align_method = "argmax".into();
        let r = Recommendation::from_defaults(&d, 12).unwrap();
        assert_eq!(r.options, AlignOptions::new(Method::Argmax));
        // An unknown method is the model file's error, not softmax.
        d.align_method = "magic".into();
        let e = Recommendation::from_defaults(&d, 12).unwrap_err();
        assert!(matches!(e, Error::Metadata(_)), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("`magic`") && e.contains("itermax"), "{e}");
    }
}

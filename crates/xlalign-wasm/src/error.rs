//! Every failure crosses into JavaScript as a thrown `Error` whose `message` says what went
//! wrong and whose `code` lets a caller branch without parsing text:
//!
//! | code          | meaning                                                        |
//! |---------------|----------------------------------------------------------------|
//! | `input`       | bad argument or option, text too long — fix the call            |
//! | `model`       | the bytes are not a usable model (corrupt, truncated, unsupported) |
//! | `network`     | the model could not be downloaded                               |
//! | `integrity`   | downloaded or cached bytes do not match the expected SHA-256    |
//! | `backend`     | the compute backend failed (e.g. WebGPU device lost)            |
//! | `disposed`    | the aligner was disposed                                        |
//! | `cancelled`   | the call was aborted through its `signal` (`name` is `AbortError`) |

use std::fmt::Display;

use wasm_bindgen::prelude::*;

// Thrown errors are plain `Error`s with a `code` (and `name` "AbortError" when cancelled).
#[wasm_bindgen(typescript_custom_section)]
const ERROR_TS: &'static str = r#"
/** What xlalign throws: an `Error` whose `code` says what kind of failure it is. */
export interface XlalignError extends Error { code: ErrorCode; }
"#;

/// The `code` of every error xlalign throws (see the table above).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, tsify::Tsify)]
#[serde(rename_all = "lowercase")]
#[tsify(rename = "ErrorCode")]
pub enum Code {
    Input,
    Model,
    Network,
    Integrity,
    Backend,
    Disposed,
    Cancelled,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Input => "input",
            Code::Model => "model",
            Code::Network => "network",
            Code::Integrity => "integrity",
            Code::Backend => "backend",
            Code::Disposed => "disposed",
            Code::Cancelled => "cancelled",
        }
    }
}

/// An error on its way to JavaScript. Kept as plain Rust data until the boundary so that
/// code below it stays testable natively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmError {
    pub code: Code,
    pub message: String,
}

pub type Result<T, E = WasmError> = std::result::Result<T, E>;

impl WasmError {
    pub fn new(code: Code, message: impl Display) -> WasmError {
        WasmError {
            code,
            message: message.to_string(),
        }
    }
    pub fn input(message: impl Display) -> WasmError {
        WasmError::new(Code::Input, message)
    }
    pub fn network(message: impl Display) -> WasmError {
        WasmError::new(Code::Network, message)
    }
    pub fn cancelled() -> WasmError {
        WasmError::new(Code::Cancelled, "the operation was aborted")
    }
}

impl Display for WasmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<xlalign_core::Error> for WasmError {
    fn from(e: xlalign_core::Error) -> Self {
        use xlalign_core::error::ErrorKind as K;
        let code = match e.kind() {
            K::Model => Code::Model,
            K::Input => Code::Input,
            K::Backend => Code::Backend,
            // In the browser the only I/O is the network (progressive loading's row pages).
            K::Io => Code::Network,
        };
        WasmError::new(code, e)
    }
}

impl From<WasmError> for JsValue {
    fn from(e: WasmError) -> JsValue {
        let err = js_sys::Error::new(&e.message);
        if e.code == Code::Cancelled {
            // The name DOM APIs use, so `err.name === "AbortError"` checks work as with fetch.
            err.set_name("AbortError");
        }
        let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code.as_str().into());
        err.into()
    }
}

/// Turns a value thrown by a JavaScript API into a message. `DOMException`s and `Error`s
/// carry a `message`; anything else is stringified.
pub fn describe_js(v: &JsValue) -> String {
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    if let Ok(m) = js_sys::Reflect::get(v, &"message".into()) {
        if let Some(s) = m.as_string() {
            return s;
        }
    }
    v.as_string().unwrap_or_else(|| format!("{v:?}"))
}

/// True when `v` is the rejection an aborted fetch or stream read produces.
pub fn is_abort(v: &JsValue) -> bool {
    js_sys::Reflect::get(v, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .as_deref()
        == Some("AbortError")
}

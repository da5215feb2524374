//! The width a picture has to fit in: the content width of its container, followed with a
//! `ResizeObserver` (window resizes, the page's scroll bar appearing, a phone turned), so a
//! picture is laid out for the room it really has.

use leptos::html::Div;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The container's content width in CSS pixels, `None` until it is in the page. Changes of
/// less than a pixel are ignored (they would only redraw the same picture).
pub fn track(node: NodeRef<Div>) -> ReadSignal<Option<f64>> {
    let (width, set_width) = signal(None::<f64>);
    let update = move |w: f64| {
        if w > 0.0 && width.with_untracked(|old| old.is_none_or(|o| (o - w).abs() >= 1.0)) {
            set_width.try_set(Some(w));
        }
    };
    let observer = StoredValue::new_local(None::<(JsValue, Closure<dyn FnMut(JsValue)>)>);
    Effect::new(move |_| {
        let Some(el) = node.get() else { return };
        update(el.client_width() as f64);
        if observer.with_value(|o| o.is_some()) {
            return;
        }
        // Through js_sys, so the page needs no further web-sys features; a browser without
        // ResizeObserver keeps the width measured at the start.
        let Ok(ctor) = js_sys::Reflect::get(&window(), &JsValue::from_str("ResizeObserver")) else {
            return;
        };
        let Some(ctor) = ctor.dyn_ref::<js_sys::Function>() else {
            return;
        };
        let target = el.clone();
        let cb = Closure::<dyn FnMut(JsValue)>::new(move |_entries: JsValue| {
            update(target.client_width() as f64);
        });
        let Ok(obs) = js_sys::Reflect::construct(ctor, &js_sys::Array::of1(cb.as_ref())) else {
            return;
        };
        let target: &JsValue = el.as_ref();
        call(&obs, "observe", Some(target));
        observer.set_value(Some((obs, cb)));
    });
    // Before the closure is dropped with this owner (cleanups run first).
    on_cleanup(move || {
        observer.try_update_value(|o| {
            if let Some((obs, _cb)) = o.take() {
                call(&obs, "disconnect", None);
            }
        });
    });
    width
}

fn call(obj: &JsValue, method: &str, arg: Option<&JsValue>) {
    let Ok(f) = js_sys::Reflect::get(obj, &JsValue::from_str(method)) else {
        return;
    };
    if let Some(f) = f.dyn_ref::<js_sys::Function>() {
        let _ = match arg {
            Some(a) => f.call1(obj, a),
            None => f.call0(obj),
        };
    }
}

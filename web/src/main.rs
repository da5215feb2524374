//! The xlalign demo page (Leptos, client-side rendering). Built for the browser by Trunk from
//! web/index.html together with the worker binary (src/bin/worker/), which runs the model.

// Only the browser build mounts the UI; natively it is still type-checked, not used.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod ui;

fn main() {
    #[cfg(target_arch = "wasm32")]
    ui::mount();
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("this is the xlalign web app; build and serve it with trunk (see web/README.md)");
}

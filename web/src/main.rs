//! The xlalign demo page (Leptos, client-side rendering). Built for the browser by
//! scripts/build-web.sh (web/index.html, web/assemble.py); the model runs in the xlalign
//! JavaScript package's worker, which the page starts (ui::bridge).

// Only the browser build mounts the UI; natively it is still type-checked, not used.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod ui;

fn main() {
    #[cfg(target_arch = "wasm32")]
    ui::mount();
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("this is the xlalign web app; build it with scripts/build-web.sh and serve it with scripts/serve-web.sh (see web/README.md)");
}

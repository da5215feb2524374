//! AFL++ target: see [`xlalign_fuzz::targets::gguf_header`].
fn main() {
    xlalign_fuzz::targets::init();
    afl::fuzz!(|data: &[u8]| xlalign_fuzz::targets::gguf_header(data));
}

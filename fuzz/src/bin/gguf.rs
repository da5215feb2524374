//! AFL++ target: see [`xlalign_fuzz::targets::gguf`].
fn main() {
    xlalign_fuzz::targets::init();
    afl::fuzz!(|data: &[u8]| xlalign_fuzz::targets::gguf(data));
}

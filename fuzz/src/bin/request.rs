//! AFL++ target: see [`xlalign_fuzz::targets::request`].
fn main() {
    xlalign_fuzz::targets::init();
    afl::fuzz!(|data: &[u8]| xlalign_fuzz::targets::request(data));
}

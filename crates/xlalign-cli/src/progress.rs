//! Progress bars on stderr, shown only when stderr is a terminal (logs stay clean).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

pub fn bar(total: u64, unit: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    let template = match unit {
        "bytes" => "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        _ => "{msg} [{bar:40}] {pos}/{len} {per_sec} ({eta})",
    };
    pb.set_style(
        ProgressStyle::with_template(template)
            .unwrap()
            .progress_chars("=> "),
    );
    pb
}

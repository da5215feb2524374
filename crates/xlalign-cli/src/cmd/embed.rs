//! `xlalign embed` (wired once the CPU backend lands).
use anyhow::Result;
#[derive(clap::Args)]
pub struct Args {}
pub fn run(_args: Args) -> Result<i32> { anyhow::bail!("not yet available") }

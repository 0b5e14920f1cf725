//! The `windows` scenario: what the window kinds cost on the replay benchmark. `dataflow --input FILE`
//! (bounded, Parquet on) is timed with the default tumbling windows, with hopping windows of 30 s every 10 s
//! (3 windows per event), of 60 s every 1 s (60 windows per event) and with sessions of a 5 s gap, on the same
//! file and layout; each is reported with its ratio to the tumbling run (`udf::compare_variants`).

use anyhow::Result;

use crate::ctx::Ctx;
use crate::input::InputSpec;
use crate::replay::Layout;
use crate::udf::{Variant, compare_variants};

/// The `windows` scenario.
pub fn windows(ctx: &Ctx, spec: &InputSpec, workers: usize, repeat: usize) -> Result<()> {
    let layout = Layout { processes: 1, workers };
    let variants: Vec<Variant> = [
        ("tumbling --window 10s", vec!["--window", "10s"]),
        (
            "hopping --window 30s --slide 10s",
            vec!["--window", "30s", "--slide", "10s"],
        ),
        (
            "hopping --window 60s --slide 1s",
            vec!["--window", "60s", "--slide", "1s"],
        ),
        ("session --session-gap 5s", vec!["--session-gap", "5s"]),
    ]
    .into_iter()
    .map(|(label, args)| Variant {
        label: label.to_string(),
        args: args.into_iter().map(String::from).collect(),
        prepare: false,
    })
    .collect();
    compare_variants(ctx, "windows", spec, layout, repeat, &variants, "tumbling")
}

//! Placeholder until the dashboard lands.
fn main() {}

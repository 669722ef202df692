//! ferry's demo service (being written).
fn main() {}

//! Statistical tests and estimates used to compare a canary with the stable revision.

mod mann_whitney;
mod percentile;
mod proportion;
mod shift;

pub use mann_whitney::{Alternative, MannWhitney, Method, MethodUsed, mann_whitney_u};
pub use percentile::{median, quantile, quantile_sorted};
pub use proportion::{
    FISHER_BELOW, ProportionMethod, ProportionTest, binomial_at_least, compare_proportions,
    fisher_exact, two_proportion_z,
};
pub use shift::{Shift, hodges_lehmann};

//! ferry-analysis (being written).

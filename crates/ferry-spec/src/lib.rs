//! ferry-spec (being written).

//! ferry-proxy (being written).

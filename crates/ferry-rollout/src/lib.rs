//! ferry-rollout (being written).

//! stub
/// stub
#[derive(Debug)]
pub struct GitopsOutcome;
/// stub
pub fn gitops_update() {}

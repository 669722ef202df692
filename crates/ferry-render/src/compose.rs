//! stub
use crate::{Error, Rendered, app::App};
pub(crate) fn render(_: &App<'_>, _: &mut Rendered) -> Result<(), Error> {
    Ok(())
}

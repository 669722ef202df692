//! stub
use crate::{Error, Rendered, app::App};
pub(crate) fn render_github(_: &App<'_>, _: &mut Rendered) -> Result<(), Error> {
    Ok(())
}
pub(crate) fn render_gitlab(_: &App<'_>, _: &mut Rendered) -> Result<(), Error> {
    Ok(())
}

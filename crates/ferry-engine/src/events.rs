//! Container lifecycle events from the engine, so a controller learns of an exit or a
//! health change when it happens instead of polling.

use bollard::models::EventMessageTypeEnum;
use bollard::query_parameters::EventsOptions;
use futures_util::{Stream, StreamExt};

use crate::engine::Engine;
use crate::error::{EngineError, api};

/// What happened to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEventKind {
    /// It started.
    Start,
    /// Its main process ended.
    Die {
        /// The exit code (when the engine reported one).
        exit_code: Option<i64>,
    },
    /// The kernel killed a process for exceeding the memory limit.
    Oom,
    /// Its HEALTHCHECK status changed (`healthy`, `unhealthy`).
    Health(String),
    /// Another action (`create`, `stop`, `kill`, `destroy`, ...).
    Other(String),
}

/// A container event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// Container id.
    pub id: String,
    /// Container name.
    pub name: String,
    /// What happened.
    pub kind: ContainerEventKind,
    /// When, nanoseconds since the epoch (engine clock).
    pub time_nanos: i64,
}

/// Maps an engine action (`die`, `health_status: healthy`, ...) to an event kind.
fn kind(action: &str, exit_code: Option<&String>) -> ContainerEventKind {
    if let Some(status) = action.strip_prefix("health_status:") {
        return ContainerEventKind::Health(status.trim().to_owned());
    }
    match action {
        "start" => ContainerEventKind::Start,
        "die" => ContainerEventKind::Die {
            exit_code: exit_code.and_then(|c| c.parse().ok()),
        },
        "oom" => ContainerEventKind::Oom,
        other => ContainerEventKind::Other(other.to_owned()),
    }
}

impl Engine {
    /// Events of containers carrying all the given labels until the stream is dropped:
    /// from now on, or replayed from `since` (unix seconds, engine clock) first, so no
    /// event between a decision and the subscription is lost.
    pub fn container_events(
        &self,
        labels: &[(&str, &str)],
        since: Option<i64>,
    ) -> impl Stream<Item = Result<ContainerEvent, EngineError>> + use<> {
        let mut filters = crate::image::label_filters(labels);
        filters.insert("type".to_owned(), vec!["container".to_owned()]);
        let options = EventsOptions {
            filters: Some(filters),
            since: since.map(|s| s.to_string()),
            until: None,
        };
        self.docker
            .events(Some(options))
            .filter_map(|item| async move {
                match item {
                    Ok(msg) if msg.typ == Some(EventMessageTypeEnum::CONTAINER) => {
                        let actor = msg.actor.unwrap_or_default();
                        let attrs = actor.attributes.unwrap_or_default();
                        Some(Ok(ContainerEvent {
                            id: actor.id.unwrap_or_default(),
                            name: attrs.get("name").cloned().unwrap_or_default(),
                            kind: kind(msg.action.as_deref().unwrap_or(""), attrs.get("exitCode")),
                            time_nanos: msg.time_nano.unwrap_or(0),
                        }))
                    }
                    Ok(_) => None,
                    Err(e) => Some(Err(api("container events")(e))),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_actions_map_to_kinds() {
        assert_eq!(
            kind("die", Some(&"137".to_owned())),
            ContainerEventKind::Die {
                exit_code: Some(137)
            }
        );
        assert_eq!(
            kind("health_status: unhealthy", None),
            ContainerEventKind::Health("unhealthy".into())
        );
        assert_eq!(kind("start", None), ContainerEventKind::Start);
        assert_eq!(kind("oom", None), ContainerEventKind::Oom);
        assert_eq!(
            kind("destroy", None),
            ContainerEventKind::Other("destroy".into())
        );
    }
}

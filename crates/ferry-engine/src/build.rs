//! Image builds: send the packed context to the engine, turn its output into progress
//! events, and report what was built and how much of the cache was reused.
//!
//! The classic builder is used (no `# syntax=` frontend image is needed). Its output is a
//! stream of text: `Step n/m : INSTRUCTION`, ` ---> Using cache`, command output, and an
//! error message on failure; [`BuildProgress`] is the pure parser of that stream.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::query_parameters::{BuildImageOptions, BuilderVersion, TagImageOptions};
use futures_util::StreamExt;

use crate::engine::Engine;
use crate::error::{EngineError, api};

/// How many output lines a build failure keeps.
const FAILURE_TAIL: usize = 20;

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile, relative to the context or absolute (default `Dockerfile`).
    pub dockerfile: PathBuf,
    /// Tags (`name:tag`); the first is given to the build, the others added after it.
    pub tags: Vec<String>,
    /// Labels added to the image (e.g. the OCI `org.opencontainers.image.*` ones).
    pub labels: BTreeMap<String, String>,
    /// `ARG` values.
    pub build_args: BTreeMap<String, String>,
    /// The stage to build in a multi-stage Dockerfile.
    pub target: Option<String>,
    /// Ignore the build cache.
    pub no_cache: bool,
}

/// A progress event of a running build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// The context was packed and is being sent.
    Context {
        /// Files in the context.
        files: usize,
        /// Their total size in bytes.
        bytes: u64,
    },
    /// A Dockerfile step started.
    Step {
        /// 1-based step number.
        n: u32,
        /// Number of steps.
        total: u32,
        /// The instruction, e.g. `COPY dist/hello /hello`.
        instruction: String,
    },
    /// The current step was satisfied from the cache.
    Cached {
        /// The step number.
        n: u32,
    },
    /// A line of build output (command output, engine messages).
    Output {
        /// The line, without its newline.
        line: String,
    },
    /// The build failed.
    Failed {
        /// The step that failed, when known.
        step: Option<u32>,
        /// The engine's error message.
        message: String,
    },
}

/// What a successful build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    /// The image id (`sha256:...`).
    pub image_id: String,
    /// Image size in bytes.
    pub size_bytes: u64,
    /// Number of filesystem layers.
    pub layers: usize,
    /// Wall time of the build, packing included.
    pub duration: Duration,
    /// Dockerfile steps.
    pub steps_total: u32,
    /// Steps that reused the cache (`FROM` steps count as reused: nothing is built).
    pub steps_cached: u32,
    /// Tags applied.
    pub tags: Vec<String>,
    /// Files sent in the context.
    pub context_files: usize,
    /// Bytes of file content sent in the context.
    pub context_bytes: u64,
}

/// A failed build: which step failed, the engine's message and the last output lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildFailure {
    /// The failing step (1-based), when the failure happened inside a step.
    pub step: Option<u32>,
    /// The number of steps.
    pub steps_total: Option<u32>,
    /// The failing step's instruction.
    pub instruction: Option<String>,
    /// The engine's error message.
    pub message: String,
    /// The last lines of output of the failing step.
    pub output: Vec<String>,
    /// Images the completed steps left behind (the classic builder keeps them as cache);
    /// remove them to leave nothing behind.
    pub intermediate_images: Vec<String>,
}

impl std::fmt::Display for BuildFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.step, self.steps_total, &self.instruction) {
            (Some(n), Some(total), Some(instr)) => {
                write!(
                    f,
                    "build failed at step {n}/{total} ({instr}): {}",
                    self.message
                )
            }
            _ => write!(f, "build failed: {}", self.message),
        }
    }
}

/// Parser state for the classic builder's output stream.
#[derive(Debug, Default)]
pub struct BuildProgress {
    partial: String,
    step: Option<u32>,
    total: Option<u32>,
    instruction: Option<String>,
    cached: Vec<u32>,
    tail: VecDeque<String>,
    intermediate: Vec<String>,
    image_id: Option<String>,
    failure: Option<BuildFailure>,
}

impl BuildProgress {
    /// Feeds a `stream` chunk (may hold several or partial lines).
    pub fn feed_stream(&mut self, chunk: &str) -> Vec<BuildEvent> {
        self.partial.push_str(chunk);
        let mut events = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.line(line.trim_end_matches(['\n', '\r']), &mut events);
        }
        events
    }

    /// Feeds an `error` from the engine; the build has failed.
    pub fn feed_error(&mut self, message: &str) -> Vec<BuildEvent> {
        let mut events = self.flush();
        let message = message.trim().to_owned();
        self.failure = Some(BuildFailure {
            step: self.step,
            steps_total: self.total,
            instruction: self.instruction.clone(),
            message: message.clone(),
            output: self.tail.iter().cloned().collect(),
            intermediate_images: self.intermediate.clone(),
        });
        events.push(BuildEvent::Failed {
            step: self.step,
            message,
        });
        events
    }

    /// Feeds the image id the engine reports in its `aux` message.
    pub fn feed_image_id(&mut self, id: &str) {
        self.image_id = Some(id.to_owned());
    }

    /// Ends the stream, returning events for a last unterminated line.
    pub fn flush(&mut self) -> Vec<BuildEvent> {
        let mut events = Vec::new();
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(line.trim_end_matches('\r'), &mut events);
        }
        events
    }

    /// The failure, when the engine reported one.
    pub fn failure(&self) -> Option<&BuildFailure> {
        self.failure.as_ref()
    }

    /// The built image id, when known.
    pub fn image_id(&self) -> Option<&str> {
        self.image_id.as_deref()
    }

    /// Steps seen (`m` of the last `Step n/m`).
    pub fn steps_total(&self) -> u32 {
        self.total.unwrap_or(0)
    }

    /// Steps that reused the cache.
    pub fn steps_cached(&self) -> u32 {
        u32::try_from(self.cached.len()).unwrap_or(u32::MAX)
    }

    fn line(&mut self, line: &str, events: &mut Vec<BuildEvent>) {
        if let Some((n, total, instruction)) = parse_step(line) {
            self.step = Some(n);
            self.total = Some(total);
            self.instruction = Some(instruction.clone());
            self.tail.clear();
            // FROM resolves an existing image: nothing is built, so it counts as reused.
            let is_from = instruction
                .split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("FROM"));
            events.push(BuildEvent::Step {
                n,
                total,
                instruction,
            });
            if is_from {
                self.mark_cached(events);
            }
            return;
        }
        let trimmed = line.trim();
        if trimmed == "---> Using cache" {
            self.mark_cached(events);
            return;
        }
        if let Some(id) = trimmed.strip_prefix("---> ")
            && !id.is_empty()
            && id.chars().all(|c| c.is_ascii_hexdigit())
            && !self.intermediate.iter().any(|i| i == id)
            // FROM and cached steps point at images that existed before this build.
            && self.step.is_some_and(|n| !self.cached.contains(&n))
        {
            self.intermediate.push(id.to_owned());
        }
        if let Some(id) = trimmed.strip_prefix("Successfully built ")
            && self.image_id.is_none()
        {
            self.image_id = Some(id.trim().to_owned());
        }
        // Engine bookkeeping lines are not the user's output.
        if trimmed.is_empty()
            || trimmed.starts_with("---> ")
            || trimmed == "--->"
            || trimmed.starts_with("Removing intermediate container")
        {
            return;
        }
        if self.tail.len() == FAILURE_TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_owned());
        events.push(BuildEvent::Output {
            line: line.to_owned(),
        });
    }

    fn mark_cached(&mut self, events: &mut Vec<BuildEvent>) {
        if let Some(n) = self.step
            && !self.cached.contains(&n)
        {
            self.cached.push(n);
            events.push(BuildEvent::Cached { n });
        }
    }
}

/// Parses `Step 3/7 : COPY a b`.
fn parse_step(line: &str) -> Option<(u32, u32, String)> {
    let rest = line.strip_prefix("Step ")?;
    let (counts, instruction) = rest.split_once(" : ")?;
    let (n, total) = counts.split_once('/')?;
    Some((
        n.trim().parse().ok()?,
        total.trim().parse().ok()?,
        instruction.trim().to_owned(),
    ))
}

impl Engine {
    /// Builds an image, calling `progress` for every event, and reports the result.
    pub async fn build(
        &self,
        req: &BuildRequest,
        mut progress: impl FnMut(BuildEvent),
    ) -> Result<BuildReport, EngineError> {
        let started = Instant::now();
        let context = req.context.clone();
        let dockerfile = if req.dockerfile.as_os_str().is_empty() {
            PathBuf::from("Dockerfile")
        } else {
            req.dockerfile.clone()
        };
        let packed =
            tokio::task::spawn_blocking(move || crate::context::pack(&context, &dockerfile))
                .await
                .map_err(|e| EngineError::Context {
                    path: req.context.clone(),
                    source: std::io::Error::other(e),
                })??;
        progress(BuildEvent::Context {
            files: packed.files.len(),
            bytes: packed.content_bytes,
        });
        let options = BuildImageOptions {
            dockerfile: packed.dockerfile.clone(),
            t: req.tags.first().cloned(),
            rm: true,
            forcerm: true,
            nocache: req.no_cache,
            labels: (!req.labels.is_empty())
                .then(|| req.labels.clone().into_iter().collect::<HashMap<_, _>>()),
            buildargs: (!req.build_args.is_empty()).then(|| {
                req.build_args
                    .clone()
                    .into_iter()
                    .collect::<HashMap<_, _>>()
            }),
            target: req.target.clone().unwrap_or_default(),
            version: BuilderVersion::BuilderV1,
            ..Default::default()
        };
        let body = bollard::body_full(packed.tar.into());
        let mut stream = self.docker.build_image(options, None, Some(body));
        let mut parser = BuildProgress::default();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                // A build error arrives as an error item carrying the engine's message.
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    parser
                        .feed_error(&error)
                        .into_iter()
                        .for_each(&mut progress);
                    break;
                }
                Err(e) => return Err(api("build image")(e)),
            };
            if let Some(chunk) = &info.stream {
                parser
                    .feed_stream(chunk)
                    .into_iter()
                    .for_each(&mut progress);
            }
            if let Some(aux) = info.aux.as_ref().and_then(|a| a.id.as_ref()) {
                parser.feed_image_id(aux);
            }
            let error = info
                .error_detail
                .as_ref()
                .and_then(|d| d.message.clone())
                .or(info.error.clone());
            if let Some(error) = error {
                parser
                    .feed_error(&error)
                    .into_iter()
                    .for_each(&mut progress);
                break;
            }
        }
        parser.flush().into_iter().for_each(&mut progress);
        if let Some(failure) = parser.failure() {
            return Err(EngineError::BuildFailed(failure.clone()));
        }
        let Some(image_id) = parser.image_id().map(str::to_owned) else {
            return Err(EngineError::BuildFailed(BuildFailure {
                step: None,
                steps_total: None,
                instruction: None,
                message: "the engine ended the build without reporting an image".to_owned(),
                output: Vec::new(),
                intermediate_images: Vec::new(),
            }));
        };
        for tag in req.tags.iter().skip(1) {
            let (repo, tag_part) = split_tag(tag);
            let options = TagImageOptions {
                repo: Some(repo.to_owned()),
                tag: Some(tag_part.to_owned()),
            };
            self.docker
                .tag_image(&image_id, Some(options))
                .await
                .map_err(api(format!("tag image {image_id} as {tag}")))?;
        }
        let info = self.inspect_image(&image_id).await?;
        Ok(BuildReport {
            image_id: info.id,
            size_bytes: info.size_bytes,
            layers: info.layers,
            duration: started.elapsed(),
            steps_total: parser.steps_total(),
            steps_cached: parser.steps_cached(),
            tags: req.tags.clone(),
            context_files: packed.files.len(),
            context_bytes: packed.content_bytes,
        })
    }
}

/// Splits `repo[:tag]` at the tag colon (a registry port's colon is not a tag).
pub(crate) fn split_tag(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST_BUILD: &str = "Step 1/3 : FROM scratch\n ---> \nStep 2/3 : COPY a /a\n ---> 1a2b\nStep 3/3 : LABEL x=y\n ---> Running in 9f\nRemoving intermediate container 9f\n ---> 5d6e\nSuccessfully built 5d6e\nSuccessfully tagged t:1\n";

    #[test]
    fn steps_and_cache_hits_are_parsed() {
        let mut p = BuildProgress::default();
        let events = p.feed_stream(FIRST_BUILD);
        assert_eq!(
            events[0],
            BuildEvent::Step {
                n: 1,
                total: 3,
                instruction: "FROM scratch".into()
            }
        );
        assert_eq!(events[1], BuildEvent::Cached { n: 1 });
        assert_eq!(p.steps_total(), 3);
        assert_eq!(p.steps_cached(), 1, "only FROM counts on a cold build");
        assert_eq!(p.image_id(), Some("5d6e"));
        let mut failing = BuildProgress::default();
        failing.feed_stream("Step 1/2 : COPY a /a\n ---> 1a2b\nStep 2/2 : RUN x\n");
        failing.feed_error("boom");
        assert_eq!(failing.failure().unwrap().intermediate_images, ["1a2b"]);

        let mut warm = BuildProgress::default();
        warm.feed_stream("Step 1/2 : FROM scratch\n ---> \nStep 2/2 : COPY a /a\n ---> Using cache\n ---> 1a2b\n");
        assert_eq!(warm.steps_cached(), 2);
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let mut p = BuildProgress::default();
        let mut events = Vec::new();
        for chunk in ["Ste", "p 1/1 : FR", "OM scratch\nhello ", "world"] {
            events.extend(p.feed_stream(chunk));
        }
        events.extend(p.flush());
        assert!(matches!(&events[0], BuildEvent::Step { n: 1, .. }));
        assert_eq!(
            events.last(),
            Some(&BuildEvent::Output {
                line: "hello world".into()
            })
        );
    }

    #[test]
    fn a_failure_carries_the_step_and_its_output() {
        let mut p = BuildProgress::default();
        p.feed_stream("Step 1/2 : FROM scratch\n ---> \nStep 2/2 : RUN make\n ---> Running in 1\nmake: *** no rule\n");
        let events = p.feed_error("The command '/bin/sh -c make' returned a non-zero code: 2");
        assert_eq!(
            events,
            [BuildEvent::Failed {
                step: Some(2),
                message: "The command '/bin/sh -c make' returned a non-zero code: 2".into()
            }]
        );
        let f = p.failure().unwrap();
        assert_eq!((f.step, f.steps_total), (Some(2), Some(2)));
        assert_eq!(f.instruction.as_deref(), Some("RUN make"));
        assert_eq!(f.output, ["make: *** no rule"]);
        assert!(f.intermediate_images.is_empty());
        assert!(f.to_string().contains("step 2/2 (RUN make)"));
    }

    #[test]
    fn tags_split_at_the_tag_colon_only() {
        assert_eq!(split_tag("hello:abc"), ("hello", "abc"));
        assert_eq!(split_tag("reg:5000/hello"), ("reg:5000/hello", "latest"));
        assert_eq!(split_tag("reg:5000/hello:v1"), ("reg:5000/hello", "v1"));
    }
}

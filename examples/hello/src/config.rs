//! The service's behaviour, read once from environment variables.

use std::time::Duration;

/// Everything the environment can change about the service.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `VERSION`: reported by `/` (default `dev`).
    pub version: String,
    /// `PORT`: the TCP port to listen on (default 8080).
    pub port: u16,
    /// `FAIL_RATE`: fraction of `/` requests answered 500, in `0.0..=1.0`.
    pub fail_rate: f64,
    /// `LATENCY_MS`: latency added to every `/` request.
    pub latency: Duration,
    /// `LATENCY_JITTER_MS`: up to this much more latency, varying per request.
    pub latency_jitter: Duration,
    /// `HEALTH=fail`: every health endpoint answers 503.
    pub health_fail: bool,
    /// `STARTUP_DELAY_MS`: wait this long before listening.
    pub startup_delay: Duration,
    /// `READY_DELAY_MS`: `/health` and `/health/ready` answer 503 until this long after start.
    pub ready_delay: Duration,
    /// `CRASH_AFTER_S`: exit with status 1 this long after start.
    pub crash_after: Option<Duration>,
    /// `ALLOC_MB`: allocate and touch this many MiB at start and hold them (a revision
    /// that needs more memory than its limit).
    pub alloc_mb: u32,
    /// `SECRETS_DIR`: where secret files are mounted (default `/run/secrets`); `/` lists
    /// the names of the readable ones.
    pub secrets_dir: std::path::PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version: "dev".to_owned(),
            port: 8080,
            fail_rate: 0.0,
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            health_fail: false,
            startup_delay: Duration::ZERO,
            ready_delay: Duration::ZERO,
            crash_after: None,
            alloc_mb: 0,
            secrets_dir: std::path::PathBuf::from("/run/secrets"),
        }
    }
}

impl Config {
    /// Reads the configuration through `get` (the process environment in `main`,
    /// a map in tests), reporting every malformed variable at once.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut errors = Vec::new();
        let mut config = Config::default();
        let nonempty = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = nonempty("VERSION") {
            config.version = v.trim().to_owned();
        }
        if let Some(v) = nonempty("PORT") {
            match v.trim().parse::<u16>() {
                Ok(p) => config.port = p,
                Err(_) => errors.push(format!("PORT={v:?} is not a port number (0-65535)")),
            }
        }
        if let Some(v) = nonempty("FAIL_RATE") {
            match v.trim().parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => config.fail_rate = r,
                _ => errors.push(format!("FAIL_RATE={v:?} must be a number from 0 to 1")),
            }
        }
        let millis = |name: &str, errors: &mut Vec<String>| -> Duration {
            match nonempty(name).map(|v| (v.trim().parse::<u64>(), v)) {
                None => Duration::ZERO,
                Some((Ok(ms), _)) => Duration::from_millis(ms),
                Some((Err(_), v)) => {
                    errors.push(format!("{name}={v:?} must be whole milliseconds"));
                    Duration::ZERO
                }
            }
        };
        config.latency = millis("LATENCY_MS", &mut errors);
        config.latency_jitter = millis("LATENCY_JITTER_MS", &mut errors);
        config.startup_delay = millis("STARTUP_DELAY_MS", &mut errors);
        config.ready_delay = millis("READY_DELAY_MS", &mut errors);
        if let Some(v) = nonempty("HEALTH") {
            match v.trim() {
                "fail" => config.health_fail = true,
                "ok" | "pass" => config.health_fail = false,
                _ => errors.push(format!("HEALTH={v:?} must be `fail` or `ok`")),
            }
        }
        if let Some(v) = nonempty("CRASH_AFTER_S") {
            match v.trim().parse::<f64>() {
                Ok(s) if s.is_finite() && s >= 0.0 => {
                    config.crash_after = Some(Duration::from_secs_f64(s));
                }
                _ => errors.push(format!("CRASH_AFTER_S={v:?} must be a number of seconds")),
            }
        }
        if let Some(v) = nonempty("SECRETS_DIR") {
            config.secrets_dir = std::path::PathBuf::from(v.trim());
        }
        if let Some(v) = nonempty("ALLOC_MB") {
            match v.trim().parse::<u32>() {
                Ok(mb) if mb <= 65_536 => config.alloc_mb = mb,
                _ => errors.push(format!("ALLOC_MB={v:?} must be whole MiB, at most 65536")),
            }
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        assert_eq!(parse(&[]).unwrap(), Config::default());
    }

    #[test]
    fn every_variable_is_read() {
        let c = parse(&[
            ("VERSION", "v2"),
            ("PORT", "9000"),
            ("FAIL_RATE", "0.25"),
            ("LATENCY_MS", "10"),
            ("LATENCY_JITTER_MS", "5"),
            ("HEALTH", "fail"),
            ("STARTUP_DELAY_MS", "100"),
            ("READY_DELAY_MS", "200"),
            ("CRASH_AFTER_S", "1.5"),
            ("ALLOC_MB", "64"),
        ])
        .unwrap();
        assert_eq!(c.version, "v2");
        assert_eq!(c.port, 9000);
        assert!((c.fail_rate - 0.25).abs() < f64::EPSILON);
        assert_eq!(c.latency, Duration::from_millis(10));
        assert_eq!(c.latency_jitter, Duration::from_millis(5));
        assert!(c.health_fail);
        assert_eq!(c.startup_delay, Duration::from_millis(100));
        assert_eq!(c.ready_delay, Duration::from_millis(200));
        assert_eq!(c.crash_after, Some(Duration::from_millis(1500)));
        assert_eq!(c.alloc_mb, 64);
    }

    #[test]
    fn all_bad_variables_are_reported_together() {
        let err = parse(&[("PORT", "http"), ("FAIL_RATE", "2"), ("HEALTH", "maybe")]).unwrap_err();
        assert!(err.contains("PORT"), "{err}");
        assert!(err.contains("FAIL_RATE"), "{err}");
        assert!(err.contains("HEALTH"), "{err}");
    }
}

//! From the spec's `[strategy]` table to the rollout engine's `Plan`.

use ferry_rollout::{
    AnalysisName, AnalysisRef, Budget, CanaryStep, Plan, Revision, SmokeCheck, StableRevision,
    Strategy, Weight,
};
use ferry_spec::{Pause, Spec, StrategyKind};

use crate::error::DaemonError;

/// The plan for rolling `new` out over `stable` as `spec` says.
pub fn plan(
    env: &str,
    spec: &Spec,
    stable: Option<StableRevision>,
    new: Revision,
) -> Result<Plan, DaemonError> {
    let bad = |e: ferry_rollout::Error| DaemonError::Plan(e.to_string());
    // Refuses up front what the daemon cannot measure (an unknown table, a bad query).
    let analysis = |name: &str| -> Result<AnalysisRef, DaemonError> {
        let table = spec
            .analysis
            .get(name)
            .ok_or_else(|| DaemonError::Plan(format!("the spec has no [analysis.{name}] table")))?;
        crate::analysis::config(name, table).map_err(DaemonError::Plan)?;
        Ok(AnalysisRef::new(AnalysisName::new(name).map_err(bad)?))
    };
    let replicas = spec.web.as_ref().map_or(1, |w| w.replicas).max(1);
    let strategy = match spec.strategy.kind {
        StrategyKind::Rolling => Strategy::Rolling {
            max_surge: Budget::Count(spec.strategy.rolling.max_surge),
            max_unavailable: Budget::Count(spec.strategy.rolling.max_unavailable),
        },
        StrategyKind::BlueGreen => {
            let bg = spec.strategy.blue_green.clone().unwrap_or_default();
            Strategy::BlueGreen {
                smoke_checks: bg
                    .smoke
                    .iter()
                    .map(|c| SmokeCheck {
                        path: c.path.clone(),
                        expect_status: c.status,
                        body_contains: c.body_contains.clone(),
                    })
                    .collect(),
                auto_promote: bg.auto_promote,
                scale_down_delay: bg.scale_down_delay.as_std(),
                pre_promotion_analysis: bg
                    .pre_promotion_analysis
                    .as_deref()
                    .map(analysis)
                    .transpose()?,
                post_promotion_analysis: bg
                    .post_promotion_analysis
                    .as_deref()
                    .map(analysis)
                    .transpose()?,
            }
        }
        StrategyKind::Canary => {
            let steps = spec
                .strategy
                .canary
                .as_ref()
                .map(|c| c.steps.clone())
                .unwrap_or_default();
            let mut out = Vec::with_capacity(steps.len());
            for step in steps {
                out.push(match step {
                    ferry_spec::CanaryStep::Weight(w) => {
                        CanaryStep::Weight(Weight::new(u32::from(w.get())).map_err(bad)?)
                    }
                    ferry_spec::CanaryStep::Pause(Pause::For(d)) => CanaryStep::Pause(d.as_std()),
                    ferry_spec::CanaryStep::Pause(Pause::UntilPromoted) => {
                        CanaryStep::PauseUntilPromoted
                    }
                    ferry_spec::CanaryStep::Analysis(name) => {
                        CanaryStep::Analysis(analysis(&name)?)
                    }
                });
            }
            Strategy::Canary { steps: out }
        }
    };
    let mut plan = Plan::new(spec.app.as_str(), env, stable, new, replicas, strategy);
    plan.keep_warm = spec.strategy.keep_warm.as_std();
    plan.background_analysis = spec
        .strategy
        .analysis
        .as_deref()
        .map(analysis)
        .transpose()?;
    plan.validate().map_err(bad)?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml: &str) -> Spec {
        let doc =
            ferry_spec::parse(&ferry_spec::SourceFile::new("ferry.toml", toml)).expect("parses");
        doc.resolve(None).expect("resolves")
    }

    #[test]
    fn rolling_is_the_default_and_takes_the_budgets() {
        let s = spec("app = \"web\"\nimage = \"web:1\"\n[web]\nreplicas = 3\n");
        let p = plan("prod", &s, None, Revision::new("1").unwrap()).unwrap();
        assert_eq!(p.replicas, 3);
        assert_eq!(
            p.strategy,
            Strategy::Rolling {
                max_surge: Budget::Count(1),
                max_unavailable: Budget::Count(0)
            }
        );
    }

    #[test]
    fn canary_steps_and_blue_green_settings_carry_over() {
        let s = spec(
            "app = \"web\"\nimage = \"web:1\"\n[web]\n[strategy]\nkind = \"canary\"\n\
             [strategy.canary]\nsteps = [{ weight = 20 }, { pause = \"30s\" }, \
             { pause = \"until-promoted\" }, { weight = 50 }]\n",
        );
        let stable = StableRevision {
            rev: Revision::new("1").unwrap(),
            replicas: 1,
        };
        let p = plan(
            "prod",
            &s,
            Some(stable.clone()),
            Revision::new("2").unwrap(),
        )
        .unwrap();
        assert_eq!(
            p.strategy,
            Strategy::Canary {
                steps: vec![
                    CanaryStep::Weight(Weight::new(20).unwrap()),
                    CanaryStep::Pause(std::time::Duration::from_secs(30)),
                    CanaryStep::PauseUntilPromoted,
                    CanaryStep::Weight(Weight::new(50).unwrap()),
                ]
            }
        );
        let s = spec(
            "app = \"web\"\nimage = \"web:1\"\n[web]\n[strategy]\nkind = \"blue-green\"\n\
             [strategy.blue_green]\nauto_promote = false\nscale_down_delay = \"2s\"\n\
             smoke = [{ path = \"/\", body_contains = \"ok\" }]\n",
        );
        let p = plan("prod", &s, Some(stable), Revision::new("2").unwrap()).unwrap();
        let Strategy::BlueGreen {
            smoke_checks,
            auto_promote,
            scale_down_delay,
            ..
        } = p.strategy
        else {
            panic!("not blue-green: {:?}", p.strategy);
        };
        assert!(!auto_promote);
        assert_eq!(scale_down_delay, std::time::Duration::from_secs(2));
        assert_eq!(smoke_checks[0].expect_status, 200);
        assert_eq!(smoke_checks[0].body_contains.as_deref(), Some("ok"));
    }

    #[test]
    fn the_same_revision_twice_is_refused() {
        let s = spec("app = \"web\"\nimage = \"web:1\"\n[web]\n");
        let stable = StableRevision {
            rev: Revision::new("1").unwrap(),
            replicas: 1,
        };
        let err = plan("prod", &s, Some(stable), Revision::new("1").unwrap()).unwrap_err();
        assert!(err.to_string().contains("invalid rollout plan"), "{err}");
    }
}

//! The Grafana target: one dashboard per app — request rate, error rate and latency
//! percentiles per revision, traffic weights, and rollouts as annotations.

use serde_json::{Value, json};

use crate::app::App;
use crate::metrics::{BACKEND_WEIGHT, REQUEST_DURATION, REQUESTS_TOTAL, ROLLOUTS_TOTAL};
use crate::{Error, Rendered, yaml};

fn panel(
    id: u32,
    title: &str,
    unit: &str,
    x: u32,
    y: u32,
    targets: Vec<(String, String)>,
) -> Value {
    json!({
        "id": id,
        "type": "timeseries",
        "title": title,
        "datasource": { "type": "prometheus", "uid": "${datasource}" },
        "gridPos": { "h": 8, "w": 12, "x": x, "y": y },
        "fieldConfig": { "defaults": { "unit": unit }, "overrides": [] },
        "options": { "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true }, "tooltip": { "mode": "multi", "sort": "desc" } },
        "targets": targets.into_iter().enumerate().map(|(i, (expr, legend))| json!({
            "refId": char::from(b'A' + u8::try_from(i).unwrap_or(25)).to_string(),
            "datasource": { "type": "prometheus", "uid": "${datasource}" },
            "expr": expr,
            "legendFormat": legend,
        })).collect::<Vec<_>>(),
    })
}

/// The dashboard's PromQL expressions (also checked by promtool in the tests).
pub(crate) fn dashboard(app: &App<'_>) -> Value {
    let m = format!("app=\"{}\",env=~\"$env\"", app.name);
    let rate = "$__rate_interval";
    let quantile = |q: &str, label: &str| {
        (
            format!(
                "histogram_quantile({q}, sum by (le, revision) (rate({REQUEST_DURATION}_bucket{{{m}}}[{rate}])))"
            ),
            format!("{label} {{{{revision}}}}"),
        )
    };
    let panels = vec![
        panel(
            1,
            "Request rate",
            "reqps",
            0,
            0,
            vec![(
                format!("sum by (revision) (rate({REQUESTS_TOTAL}{{{m}}}[{rate}]))"),
                "{{revision}}".to_owned(),
            )],
        ),
        panel(
            2,
            "Error rate (5xx)",
            "percentunit",
            12,
            0,
            vec![(
                format!(
                    "sum by (revision) (rate({REQUESTS_TOTAL}{{{m},code=~\"5..\"}}[{rate}])) / sum by (revision) (rate({REQUESTS_TOTAL}{{{m}}}[{rate}]))"
                ),
                "{{revision}}".to_owned(),
            )],
        ),
        panel(
            3,
            "Latency p50 / p95 / p99",
            "s",
            0,
            8,
            vec![
                quantile("0.5", "p50"),
                quantile("0.95", "p95"),
                quantile("0.99", "p99"),
            ],
        ),
        panel(
            4,
            "Traffic weight",
            "percent",
            12,
            8,
            vec![(
                format!("max by (revision) ({BACKEND_WEIGHT}{{{m}}})"),
                "{{revision}}".to_owned(),
            )],
        ),
    ];
    json!({
        "uid": format!("ferry-{}", app.name),
        "title": format!("ferry / {}", app.name),
        "description": crate::HEADER,
        "tags": ["ferry", app.name],
        "editable": false,
        "schemaVersion": 39,
        "version": 1,
        "time": { "from": "now-6h", "to": "now" },
        "refresh": "30s",
        "timezone": "utc",
        "templating": { "list": [
            { "name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus" },
            {
                "name": "env", "label": "Environment", "type": "query",
                "datasource": { "type": "prometheus", "uid": "${datasource}" },
                "query": format!("label_values({REQUESTS_TOTAL}{{app=\"{}\"}}, env)", app.name),
                "refresh": 2, "includeAll": true, "multi": true,
                "current": app.env.as_ref().map_or_else(|| json!({}), |e| json!({ "text": e, "value": e })),
            },
        ]},
        "annotations": { "list": [{
            "name": "Rollouts",
            "enable": true,
            "iconColor": "purple",
            "datasource": { "type": "prometheus", "uid": "${datasource}" },
            "expr": format!("changes({ROLLOUTS_TOTAL}{{{m}}}[1m]) > 0"),
            "step": "1m",
            "titleFormat": "rollout {{outcome}}",
            "textFormat": "{{env}}",
        }]},
        "panels": panels,
    })
}

pub(crate) fn render(app: &App<'_>, out: &mut Rendered) -> Result<(), Error> {
    out.file(
        format!("grafana/ferry-{}.json", app.name),
        yaml::json_file(&dashboard(app)),
    );
    Ok(())
}

//! Reference tests: ferry's statistics against SciPy/NumPy on fixed data sets.
//!
//! Heavy-ish (starts a Python interpreter once) because agreement with an established
//! implementation is the point. SciPy is listed in xtask/deps/pypi.txt; when it is missing
//! the test fails and says what to install.

use std::io::Write;
use std::process::{Command, Stdio};

use ferry_analysis::statistics::{
    Alternative, Method, binomial_at_least, fisher_exact, hodges_lehmann, mann_whitney_u, quantile,
    two_proportion_z,
};
use serde_json::{Value, json};

mod common;
use common::Rng;

const SCRIPT: &str = r#"
import json, sys
import numpy as np
from scipy import stats
cases = json.load(sys.stdin)
out = {"mwu": [], "fisher": [], "chi2": [], "binom": [], "percentile": [], "hl": []}
for c in cases["mwu"]:
    r = stats.mannwhitneyu(c["x"], c["y"], alternative=c["alternative"], method=c["method"])
    out["mwu"].append([float(r.statistic), float(r.pvalue)])
for c in cases["fisher"]:
    r = stats.fisher_exact(c["table"], alternative=c["alternative"])
    out["fisher"].append(float(r.pvalue))
for c in cases["chi2"]:
    r = stats.chi2_contingency(c["table"], correction=False)
    out["chi2"].append(float(r.pvalue))
for c in cases["binom"]:
    out["binom"].append(float(stats.binomtest(c["k"], c["n"], c["p"], alternative="greater").pvalue))
for c in cases["percentile"]:
    out["percentile"].append(float(np.percentile(c["x"], c["q"] * 100)))
for c in cases["hl"]:
    out["hl"].append(float(np.median(np.subtract.outer(np.array(c["x"]), np.array(c["y"])))))
json.dump(out, sys.stdout)
"#;

fn run_scipy(cases: &Value) -> Value {
    let child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = child.expect("python3 must be installed to run the SciPy reference tests");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(cases.to_string().as_bytes())
        .expect("write cases to python");
    let output = child.wait_with_output().expect("python3 runs");
    assert!(
        output.status.success(),
        "the SciPy reference script failed — install SciPy with `pip install scipy` \
         (listed in xtask/deps/pypi.txt):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("python prints JSON")
}

use std::cell::Cell;

thread_local! {
    /// Largest relative difference seen, reported at the end of the test.
    static WORST: Cell<f64> = const { Cell::new(0.0) };
}

fn close(ours: f64, theirs: f64, what: &str) {
    let scale = ours.abs().max(theirs.abs());
    let tolerance = 1e-6 * scale + 1e-300;
    if scale > 0.0 {
        let relative = (ours - theirs).abs() / scale;
        WORST.with(|w| w.set(w.get().max(relative)));
    }
    assert!(
        (ours - theirs).abs() <= tolerance,
        "{what}: ferry {ours:e} vs scipy {theirs:e} (relative difference {:e})",
        (ours - theirs).abs() / scale
    );
}

fn alt(name: &str) -> Alternative {
    match name {
        "greater" => Alternative::Greater,
        "less" => Alternative::Less,
        _ => Alternative::TwoSided,
    }
}

fn method(name: &str) -> Method {
    match name {
        "exact" => Method::Exact,
        "asymptotic" => Method::Asymptotic,
        _ => Method::Auto,
    }
}

/// Sizes, medians, rounding (ties) and method of one Mann–Whitney data set.
type Shape = (usize, usize, f64, f64, Option<f64>, &'static str);

#[test]
fn statistics_match_scipy_on_fixed_data() {
    let mut rng = Rng(20_261_129);
    let mut mwu = Vec::new();
    let alternatives = ["two-sided", "greater", "less"];
    // (n1, n2, canary median, stable median, rounding, method)
    let shapes: [Shape; 11] = [
        (5, 7, 120.0, 100.0, None, "auto"),          // exact, no ties
        (8, 30, 150.0, 100.0, None, "auto"),         // exact (one side <= 8)
        (6, 6, 100.0, 100.0, Some(20.0), "auto"),    // ties: asymptotic
        (20, 25, 110.0, 100.0, None, "exact"),       // exact asked for
        (300, 250, 105.0, 100.0, None, "auto"),      // large: asymptotic
        (400, 400, 200.0, 100.0, None, "auto"),      // large shift: tiny p
        (500, 450, 100.0, 100.0, Some(1.0), "auto"), // many ties
        (60, 2000, 130.0, 100.0, Some(5.0), "asymptotic"),
        (3, 3, 100.0, 100.0, None, "auto"),
        (8, 400, 160.0, 100.0, None, "auto"), // exact, long null distribution
        (30, 40, 300.0, 100.0, None, "exact"), // exact, tiny p-values
    ];
    for (n1, n2, m1, m2, round, how) in shapes {
        let x = rng.sample(n1, m1, round);
        let y = rng.sample(n2, m2, round);
        for a in alternatives {
            mwu.push(json!({"x": x, "y": y, "alternative": a, "method": how}));
        }
    }
    let tables = [
        [[3u64, 1], [1, 3]],
        [[10, 190], [0, 200]],
        [[2, 498], [1, 4999]],
        [[0, 50], [0, 60]],
        [[7, 12], [3, 30]],
        [[40, 960], [25, 9975]],
        [[1, 0], [0, 1]],
        [[120, 880], [60, 940]],
        [[14, 254], [5, 2407]],
    ];
    let mut fisher = Vec::new();
    for t in tables {
        for a in alternatives {
            fisher.push(json!({"table": t, "alternative": a}));
        }
    }
    let chi2_tables = [
        [[50u64, 950], [30, 970]],
        [[500, 9500], [450, 9550]],
        [[12, 88], [30, 70]],
    ];
    let chi2: Vec<Value> = chi2_tables.iter().map(|t| json!({"table": t})).collect();
    let binom_cases = [
        (10u64, 200u64, 0.01),
        (0, 50, 0.2),
        (30, 400, 0.05),
        (7, 7, 0.5),
        (3, 1000, 0.001),
    ];
    let binom: Vec<Value> = binom_cases
        .iter()
        .map(|(k, n, p)| json!({"k": k, "n": n, "p": p}))
        .collect();
    let mut percentile = Vec::new();
    let pct_sets = [
        rng.sample(1, 100.0, None),
        rng.sample(17, 100.0, None),
        rng.sample(1000, 80.0, Some(1.0)),
    ];
    for s in &pct_sets {
        for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
            percentile.push(json!({"x": s, "q": q}));
        }
    }
    let hl_sets = [
        (rng.sample(7, 120.0, None), rng.sample(9, 100.0, None)),
        (rng.sample(200, 150.0, None), rng.sample(300, 100.0, None)),
        (
            rng.sample(50, 100.0, Some(10.0)),
            rng.sample(40, 100.0, Some(10.0)),
        ),
    ];
    let hl: Vec<Value> = hl_sets
        .iter()
        .map(|(x, y)| json!({"x": x, "y": y}))
        .collect();

    let cases = json!({
        "mwu": mwu, "fisher": fisher, "chi2": chi2, "binom": binom,
        "percentile": percentile, "hl": hl,
    });
    let reference = run_scipy(&cases);

    let mut compared = 0;
    for (i, case) in cases["mwu"].as_array().expect("list").iter().enumerate() {
        let floats = |v: &Value| -> Vec<f64> {
            v.as_array()
                .expect("list")
                .iter()
                .map(|x| x.as_f64().expect("number"))
                .collect()
        };
        let (x, y) = (floats(&case["x"]), floats(&case["y"]));
        let a = case["alternative"].as_str().expect("alternative");
        let m = case["method"].as_str().expect("method");
        let ours = mann_whitney_u(&x, &y, alt(a), method(m)).expect("non-empty samples");
        let theirs = &reference["mwu"][i];
        let what = format!(
            "mann-whitney case {i} (n={}/{}, {a}, {m})",
            x.len(),
            y.len()
        );
        close(
            ours.u1,
            theirs[0].as_f64().expect("U"),
            &format!("{what} U"),
        );
        close(
            ours.p_value,
            theirs[1].as_f64().expect("p"),
            &format!("{what} p"),
        );
        compared += 2;
    }
    for (i, case) in cases["fisher"].as_array().expect("list").iter().enumerate() {
        let t: [[u64; 2]; 2] = serde_json::from_value(case["table"].clone()).expect("table");
        let a = case["alternative"].as_str().expect("alternative");
        let ours = fisher_exact(t, alt(a)).expect("non-empty table");
        close(
            ours,
            reference["fisher"][i].as_f64().expect("p"),
            &format!("fisher {t:?} {a}"),
        );
        compared += 1;
    }
    for (i, t) in chi2_tables.iter().enumerate() {
        let (_, ours) = two_proportion_z(
            t[0][0],
            t[0][0] + t[0][1],
            t[1][0],
            t[1][0] + t[1][1],
            Alternative::TwoSided,
        )
        .expect("counts");
        close(
            ours,
            reference["chi2"][i].as_f64().expect("p"),
            &format!("z-test {t:?}"),
        );
        compared += 1;
    }
    for (i, (k, n, p)) in binom_cases.iter().enumerate() {
        let ours = binomial_at_least(*k, *n, *p).expect("valid");
        close(
            ours,
            reference["binom"][i].as_f64().expect("p"),
            &format!("binomial {k}/{n} vs {p}"),
        );
        compared += 1;
    }
    let mut i = 0;
    for s in &pct_sets {
        for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
            let ours = quantile(s, q).expect("non-empty");
            close(
                ours,
                reference["percentile"][i].as_f64().expect("value"),
                &format!("percentile q={q} n={}", s.len()),
            );
            i += 1;
            compared += 1;
        }
    }
    for (i, (x, y)) in hl_sets.iter().enumerate() {
        let ours = hodges_lehmann(x, y, 0.95).expect("non-empty");
        close(
            ours.estimate,
            reference["hl"][i].as_f64().expect("value"),
            &format!("hodges-lehmann set {i}"),
        );
        assert!(ours.lower <= ours.estimate && ours.estimate <= ours.upper);
        compared += 1;
    }
    assert!(compared > 100, "compared only {compared} values");
    let worst = WORST.with(Cell::get);
    eprintln!("compared {compared} values with SciPy/NumPy; largest relative difference {worst:e}");
}

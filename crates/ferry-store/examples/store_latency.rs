//! Measures the store's write and read latency on one backend:
//! `cargo run --release -p ferry-store --example store_latency -- LOCATION [N]`
//! (LOCATION: a SQLite file path or a postgres:// URL of a scratch database).
#![expect(
    clippy::print_stdout,
    reason = "a measuring tool that reports on stdout"
)]

use std::time::{Duration, Instant};

use ferry_store::{NewBuild, NewRollout, Store};

fn per_op(total: Duration, n: u32) -> String {
    format!("{:>8.3} ms/op", total.as_secs_f64() * 1000.0 / f64::from(n))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let location = args.next().ok_or("usage: store_latency LOCATION [N]")?;
    let n: u32 = args.next().map_or(Ok(500), |s| s.parse())?;
    let started = Instant::now();
    let store = Store::open(&location).await?;
    println!(
        "open + migrate          {:>8.3} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    let started = Instant::now();
    for i in 0..n {
        store
            .record_build(&NewBuild {
                app: "bench".into(),
                env: None,
                tag: format!("bench:{i}"),
                image_id: "sha256:0".into(),
                git_sha: None,
                size_bytes: 1,
                layers: 1,
                duration_ms: 1,
                cache_reused: 0,
                cache_total: 1,
            })
            .await?;
    }
    println!("record_build            {}", per_op(started.elapsed(), n));

    let rollout = store
        .create_rollout(&NewRollout {
            app: "bench".into(),
            env: "bench".into(),
            from_revision: None,
            to_revision: 1,
            strategy: "canary".into(),
            state: serde_json::json!({}),
            phase: "start".into(),
            created_by: "bench".into(),
        })
        .await?;
    let started = Instant::now();
    for i in 0..n {
        store
            .update_rollout_state(rollout.id, &serde_json::json!({ "step": i }), "running")
            .await?;
    }
    println!("update_rollout_state    {}", per_op(started.elapsed(), n));

    let started = Instant::now();
    for i in 0..n {
        store
            .append_event(rollout.id, "tick", &serde_json::json!({ "i": i }))
            .await?;
    }
    println!("append_event            {}", per_op(started.elapsed(), n));

    let started = Instant::now();
    for _ in 0..n {
        store
            .acquire_lock("bench", "bench", "me", "bench", Duration::from_secs(60))
            .await?;
    }
    println!("acquire_lock (renew)    {}", per_op(started.elapsed(), n));

    let started = Instant::now();
    for _ in 0..n {
        store.builds("bench", 20).await?;
    }
    println!("builds(limit 20)        {}", per_op(started.elapsed(), n));
    store.close().await;
    Ok(())
}

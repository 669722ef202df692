//! The state store against both backends: every test runs on a fresh SQLite file and on
//! a fresh database of a real PostgreSQL server (`FERRY_TEST_POSTGRES_URL`).

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{Kind, ManualClock};
use ferry_store::{
    Backend, Error, LockOutcome, NewAuditEntry, NewBuild, NewEvent, NewRevision, NewRollout,
    RevisionStatus, RolloutId, RolloutOutcome, SecretValue, Store,
};
use serde_json::json;

fn build(app: &str, tag: &str) -> NewBuild {
    NewBuild {
        app: app.to_owned(),
        env: Some("production".to_owned()),
        tag: tag.to_owned(),
        image_id: format!("sha256:{tag}"),
        git_sha: Some("3f2a9c1".to_owned()),
        size_bytes: 5_000_000_000,
        layers: 3,
        duration_ms: 1234,
        cache_reused: 2,
        cache_total: 5,
    }
}

fn revision(app: &str, env: &str, image: &str) -> NewRevision {
    NewRevision {
        app: app.to_owned(),
        env: env.to_owned(),
        image: image.to_owned(),
        image_id: Some("sha256:abc".to_owned()),
        image_digest: None,
        git_sha: Some("3f2a9c1".to_owned()),
        spec: json!({"app": app, "web": {"port": 8080}, "secrets": ["DATABASE_URL"]}),
        spec_hash: "h1".to_owned(),
        created_by: "alice".to_owned(),
    }
}

fn rollout(app: &str, to: i64) -> NewRollout {
    NewRollout {
        app: app.to_owned(),
        env: "production".to_owned(),
        from_revision: (to > 1).then_some(to - 1),
        to_revision: to,
        strategy: "canary".to_owned(),
        state: json!({"step": 0, "weight": 0}),
        phase: "starting".to_owned(),
        created_by: "alice".to_owned(),
    }
}

/// Every file under `dir`, concatenated: what an attacker with the disk would see.
fn all_bytes_under(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(all_bytes_under(&path));
        } else {
            match std::fs::read(&path) {
                Ok(bytes) => out.extend(bytes),
                // SQLite's closing connection may remove its -wal/-shm files while we
                // walk: a file gone from the disk holds nothing an attacker could read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("read {}: {e}", path.display()),
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

on_both_backends! {
    /// Opening an existing store again applies nothing twice and keeps the data.
    async fn migrations_are_idempotent(ctx) {
        let expected = match ctx.kind {
            Kind::Sqlite => Backend::Sqlite,
            Kind::Postgres => Backend::Postgres,
        };
        assert_eq!(ctx.store.backend(), expected);
        ctx.store.ping().await.unwrap();
        let first = ctx.store.record_build(&build("hello", "hello:1")).await.unwrap();
        let again = Store::open(&ctx.location).await.unwrap();
        let third = Store::open(&ctx.location).await.unwrap();
        assert_eq!(again.builds("hello", 10).await.unwrap(), vec![first.clone()]);
        third.record_build(&build("hello", "hello:2")).await.unwrap();
        assert_eq!(ctx.store.builds("hello", 10).await.unwrap().len(), 2);
        again.close().await;
        third.close().await;
    }

    /// A store migrated by a newer ferry is refused with a clear message, not misread.
    async fn newer_schema_is_refused(ctx) {
        use sqlx::Connection;
        let insert = "INSERT INTO _sqlx_migrations \
            (version, description, success, checksum, execution_time) \
            VALUES (99990101000000, 'from the future', TRUE, X'00', 1)";
        match ctx.kind {
            Kind::Sqlite => {
                let mut conn = sqlx::sqlite::SqliteConnection::connect(&format!("sqlite://{}", ctx.location)).await.unwrap();
                sqlx::query(insert).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            Kind::Postgres => {
                let mut conn = sqlx::postgres::PgConnection::connect(&ctx.location).await.unwrap();
                sqlx::query(&insert.replace("X'00'", "'\\x00'::bytea")).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
        let err = Store::open(&ctx.location).await.unwrap_err();
        assert!(matches!(err, Error::SchemaTooNew { version: 99_990_101_000_000 }), "{err:?}");
        assert!(err.to_string().contains("upgrade ferry"), "{err}");
    }

    /// Builds come back as recorded, newest first, limited, per app.
    async fn builds_round_trip_newest_first(ctx) {
        let clock = ManualClock::new();
        let store = clock.install(ctx.store.clone());
        let a = store.record_build(&build("hello", "hello:a")).await.unwrap();
        clock.advance_ms(1000);
        let b = store.record_build(&build("hello", "hello:b")).await.unwrap();
        store.record_build(&build("other", "other:a")).await.unwrap();
        let mut no_env = build("hello", "hello:c");
        no_env.env = None;
        no_env.git_sha = None;
        let c = store.record_build(&no_env).await.unwrap();

        assert_eq!(a.created_at, clock.now() - time::Duration::seconds(1));
        assert_eq!(b.created_at, clock.now());
        assert_eq!(a.size_bytes, 5_000_000_000);
        assert_eq!((a.layers, a.duration_ms, a.cache_reused, a.cache_total), (3, 1234, 2, 5));
        assert_eq!(a.git_sha.as_deref(), Some("3f2a9c1"));
        assert_eq!(c.env, None);
        assert_eq!(c.git_sha, None);

        let all = store.builds("hello", 10).await.unwrap();
        assert_eq!(all, vec![c.clone(), b.clone(), a]);
        assert_eq!(store.builds("hello", 2).await.unwrap(), vec![c, b]);
        assert_eq!(store.builds("nobody", 10).await.unwrap(), vec![]);
    }

    /// Revision numbers start at 1 and increase by one per app+env, independently.
    async fn revision_numbers_increase_per_app_env(ctx) {
        let s = &ctx.store;
        let mut seen = Vec::new();
        for (app, env) in [("web", "prod"), ("web", "prod"), ("web", "staging"), ("api", "prod"), ("web", "prod")] {
            seen.push(s.next_revision(&revision(app, env, "img:1")).await.unwrap().number);
        }
        assert_eq!(seen, vec![1, 2, 1, 1, 3]);
        let listed: Vec<i64> = s.revisions("web", "prod").await.unwrap().iter().map(|r| r.number).collect();
        assert_eq!(listed, vec![3, 2, 1]);

        let r = s.revision("web", "prod", 2).await.unwrap().expect("revision 2");
        assert_eq!(r.status, RevisionStatus::Pending);
        assert_eq!(r.spec, json!({"app": "web", "web": {"port": 8080}, "secrets": ["DATABASE_URL"]}));
        assert_eq!(r.created_by, "alice");
        assert!(s.revision("web", "prod", 9).await.unwrap().is_none());
    }

    /// Concurrent allocations get distinct, consecutive numbers.
    async fn revision_numbers_are_unique_under_concurrency(ctx) {
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let store = ctx.store.clone();
                tokio::spawn(async move {
                    store.next_revision(&revision("web", "prod", &format!("img:{i}"))).await.unwrap().number
                })
            })
            .collect();
        let mut numbers = BTreeSet::new();
        for task in tasks {
            numbers.insert(task.await.unwrap());
        }
        assert_eq!(numbers, (1..=10).collect::<BTreeSet<i64>>());
    }

    /// Two independently opened stores (as the daemon and a CLI in another process) write
    /// to one database at once without losing or duplicating anything.
    async fn two_stores_write_concurrently(ctx) {
        let other = Store::open(&ctx.location).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = if i % 2 == 0 { ctx.store.clone() } else { other.clone() };
            tasks.push(tokio::spawn(async move {
                let number = store.next_revision(&revision("web", "prod", "img")).await.unwrap().number;
                store.record_build(&build("web", &format!("web:{i}"))).await.unwrap();
                number
            }));
        }
        let mut numbers = BTreeSet::new();
        for task in tasks {
            numbers.insert(task.await.unwrap());
        }
        assert_eq!(numbers, (1..=40).collect::<BTreeSet<i64>>());
        assert_eq!(ctx.store.builds("web", 100).await.unwrap().len(), 40);
        other.close().await;
    }

    /// A revision's status and reason change; an unknown revision is an error.
    async fn revision_status_changes(ctx) {
        let s = &ctx.store;
        s.next_revision(&revision("web", "prod", "img:1")).await.unwrap();
        let failed = s
            .set_revision_status("web", "prod", 1, RevisionStatus::Failed, Some("never healthy"))
            .await
            .unwrap();
        assert_eq!(failed.status, RevisionStatus::Failed);
        assert_eq!(failed.reason.as_deref(), Some("never healthy"));
        let err = s.set_revision_status("web", "prod", 7, RevisionStatus::Live, None).await.unwrap_err();
        assert!(matches!(err, Error::RevisionNotFound { number: 7, .. }), "{err:?}");
    }

    /// Marking a revision live supersedes the previous live one: never two live at once.
    async fn one_live_revision_per_app_env(ctx) {
        let s = &ctx.store;
        for _ in 0..3 {
            s.next_revision(&revision("web", "prod", "img")).await.unwrap();
        }
        s.next_revision(&revision("web", "staging", "img")).await.unwrap();
        assert!(s.live_revision("web", "prod").await.unwrap().is_none());
        s.set_revision_status("web", "prod", 1, RevisionStatus::Live, None).await.unwrap();
        s.set_revision_status("web", "staging", 1, RevisionStatus::Live, None).await.unwrap();
        let two = s.set_revision_status("web", "prod", 2, RevisionStatus::Live, None).await.unwrap();
        assert_eq!(two.status, RevisionStatus::Live);
        assert_eq!(s.live_revision("web", "prod").await.unwrap().unwrap().number, 2);
        assert_eq!(s.revision("web", "prod", 1).await.unwrap().unwrap().status, RevisionStatus::Superseded);
        assert_eq!(s.live_revision("web", "staging").await.unwrap().unwrap().number, 1);
        // Marking the live one live again changes nothing else.
        s.set_revision_status("web", "prod", 2, RevisionStatus::Live, None).await.unwrap();
        assert_eq!(s.live_revision("web", "prod").await.unwrap().unwrap().number, 2);
        // An unknown revision fails and leaves the live one live.
        let err = s.set_revision_status("web", "prod", 99, RevisionStatus::Live, None).await.unwrap_err();
        assert!(matches!(err, Error::RevisionNotFound { .. }), "{err:?}");
        assert_eq!(s.live_revision("web", "prod").await.unwrap().unwrap().number, 2);
        // Rolling back: 2 rolled back, 1 live again.
        s.set_revision_status("web", "prod", 1, RevisionStatus::Live, Some("rollback")).await.unwrap();
        let two = s.set_revision_status("web", "prod", 2, RevisionStatus::RolledBack, Some("p95 too high")).await.unwrap();
        assert_eq!(two.reason.as_deref(), Some("p95 too high"));
        let statuses: Vec<_> = s.revisions("web", "prod").await.unwrap().iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![RevisionStatus::Pending, RevisionStatus::RolledBack, RevisionStatus::Live]);
    }

    /// Ten concurrent attempts on one app+env: exactly one wins, the rest see the winner.
    async fn lock_acquire_is_exclusive_under_concurrency(ctx) {
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let store = ctx.store.clone();
                tokio::spawn(async move {
                    store
                        .acquire_lock("web", "prod", &format!("deployer-{i}"), "deploy", Duration::from_secs(60))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        let winners: Vec<_> = outcomes.iter().filter(|o| o.acquired()).collect();
        assert_eq!(winners.len(), 1, "{outcomes:#?}");
        let winner = &winners[0].lock().holder;
        for o in &outcomes {
            assert_eq!(&o.lock().holder, winner);
        }
        let status = ctx.store.lock_status("web", "prod").await.unwrap().expect("locked");
        assert_eq!(&status.holder, winner);
        assert!(!status.expired);
        // Another app+env is independent.
        assert!(ctx.store.acquire_lock("web", "staging", "x", "deploy", Duration::from_secs(1)).await.unwrap().acquired());
    }

    /// A lapsed lock is taken over; only the holder releases; renewal extends.
    async fn lock_expires_renews_and_releases(ctx) {
        let clock = ManualClock::new();
        let s = clock.install(ctx.store.clone());
        let ttl = Duration::from_secs(10);
        let a = s.acquire_lock("web", "prod", "a", "deploy v2", ttl).await.unwrap();
        let LockOutcome::Acquired(first) = a else { panic!("a should win: {a:?}") };
        assert_eq!(first.expires_at, clock.now() + time::Duration::seconds(10));

        clock.advance_ms(5_000);
        let b = s.acquire_lock("web", "prod", "b", "deploy v3", ttl).await.unwrap();
        assert!(!b.acquired());
        assert_eq!(b.lock().holder, "a");
        assert_eq!(b.lock().reason, "deploy v2");

        // The holder re-acquiring renews and keeps its acquired_at.
        let again = s.acquire_lock("web", "prod", "a", "deploy v2", ttl).await.unwrap();
        assert!(again.acquired());
        assert_eq!(again.lock().acquired_at, first.acquired_at);
        assert_eq!(again.lock().expires_at, clock.now() + time::Duration::seconds(10));
        let renewed = s.renew_lock("web", "prod", "a", Duration::from_secs(20)).await.unwrap().expect("still held");
        assert_eq!(renewed.expires_at, clock.now() + time::Duration::seconds(20));
        assert!(s.renew_lock("web", "prod", "b", ttl).await.unwrap().is_none());

        clock.advance_ms(20_000);
        let status = s.lock_status("web", "prod").await.unwrap().expect("row still there");
        assert!(status.expired);
        let b = s.acquire_lock("web", "prod", "b", "deploy v3", ttl).await.unwrap();
        assert!(b.acquired(), "{b:?}");
        assert_eq!(b.lock().acquired_at, clock.now());

        assert!(!s.release_lock("web", "prod", "a").await.unwrap());
        assert!(s.release_lock("web", "prod", "b").await.unwrap());
        assert!(s.lock_status("web", "prod").await.unwrap().is_none());

        s.acquire_lock("web", "prod", "c", "stuck", ttl).await.unwrap();
        let forced = s.force_release_lock("web", "prod").await.unwrap().expect("was held");
        assert_eq!(forced.holder, "c");
        assert!(s.force_release_lock("web", "prod").await.unwrap().is_none());
    }

    /// Rollouts list newest first; state updates persist until finish; events keep order.
    async fn rollouts_and_events_keep_order(ctx) {
        let clock = ManualClock::new();
        let s = clock.install(ctx.store.clone());
        let r1 = s.create_rollout(&rollout("web", 1)).await.unwrap();
        clock.advance_ms(10);
        let r2 = s.create_rollout(&rollout("web", 2)).await.unwrap();
        s.create_rollout(&rollout("api", 1)).await.unwrap();
        assert!(r2.id > r1.id);
        assert_eq!(r2.from_revision, Some(1));
        assert_eq!(r1.from_revision, None);
        assert_eq!(r1.outcome, None);
        assert_eq!(r1.finished_at, None);

        let ids: Vec<RolloutId> = s.rollouts("web", "production").await.unwrap().iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![r2.id, r1.id]);

        for i in 0..5 {
            clock.advance_ms(1);
            s.append_event(r2.id, "weight-set", &json!({"weight": i * 10})).await.unwrap();
        }
        s.append_event(r1.id, "started", &json!({})).await.unwrap();
        let events = s.events(r2.id).await.unwrap();
        let weights: Vec<i64> = events.iter().map(|e| e.message["weight"].as_i64().unwrap()).collect();
        assert_eq!(weights, vec![0, 10, 20, 30, 40]);
        assert!(events.windows(2).all(|w| w[0].seq < w[1].seq && w[0].at < w[1].at));
        assert!(events.iter().all(|e| e.rollout == r2.id && e.kind == "weight-set"));
        let tail = s.events_after(r2.id, events[2].seq).await.unwrap();
        assert_eq!(tail, events[3..].to_vec());
        assert_eq!(s.events(r1.id).await.unwrap().len(), 1);

        let updated = s.update_rollout_state(r2.id, &json!({"step": 2, "weight": 50}), "paused").await.unwrap();
        assert_eq!(updated.phase, "paused");
        assert_eq!(s.rollout(r2.id).await.unwrap().unwrap().state, json!({"step": 2, "weight": 50}));

        let unfinished: Vec<RolloutId> = s.unfinished_rollouts().await.unwrap().iter().map(|r| r.id).collect();
        assert_eq!(unfinished.len(), 3);
        assert!(unfinished.windows(2).all(|w| w[0] < w[1]));

        let done = s
            .finish_rollout(r2.id, RolloutOutcome::Failed, Some("p95 too high"), &json!({"step": 2}), "rolled-back")
            .await
            .unwrap();
        assert_eq!(done.outcome, Some(RolloutOutcome::Failed));
        assert_eq!(done.reason.as_deref(), Some("p95 too high"));
        assert_eq!(done.finished_at, Some(clock.now()));
        assert!(!s.unfinished_rollouts().await.unwrap().iter().any(|r| r.id == r2.id));

        let err = s.update_rollout_state(r2.id, &json!({}), "x").await.unwrap_err();
        assert!(matches!(err, Error::RolloutFinished { .. }), "{err:?}");
        let missing = RolloutId::new(999_999);
        let err = s.update_rollout_state(missing, &json!({}), "x").await.unwrap_err();
        assert!(matches!(err, Error::RolloutNotFound { id: 999_999 }), "{err:?}");
        let err = s.append_event(missing, "x", &json!({})).await.unwrap_err();
        assert!(matches!(err, Error::RolloutNotFound { .. }), "{err:?}");
    }

    /// A state change and its events are stored together, or not at all.
    async fn advance_rollout_stores_state_and_events_together(ctx) {
        let s = &ctx.store;
        let r = s.create_rollout(&rollout("web", 1)).await.unwrap();
        s.append_event(r.id, "started", &json!({})).await.unwrap();
        let events = vec![
            NewEvent { kind: "weight-set".to_owned(), message: json!({"weight": 10}) },
            NewEvent { kind: "paused".to_owned(), message: json!({"for": "5m"}) },
        ];
        let (after, appended) = s.advance_rollout(r.id, &json!({"step": 1}), "paused", &events).await.unwrap();
        assert_eq!(after.phase, "paused");
        assert_eq!(appended.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), vec!["weight-set", "paused"]);
        let timeline = s.events(r.id).await.unwrap();
        assert_eq!(timeline.len(), 3);
        assert_eq!(timeline[1..].to_vec(), appended);
        assert!(appended.iter().all(|e| e.at == after.updated_at));

        s.finish_rollout(r.id, RolloutOutcome::Succeeded, None, &json!({"step": 2}), "done").await.unwrap();
        let err = s.advance_rollout(r.id, &json!({"step": 3}), "x", &events).await.unwrap_err();
        assert!(matches!(err, Error::RolloutFinished { .. }), "{err:?}");
        assert_eq!(s.events(r.id).await.unwrap().len(), 3, "no event of a refused change is kept");
        assert_eq!(s.rollout(r.id).await.unwrap().unwrap().state, json!({"step": 2}));
    }

    /// Records serialise to JSON (RFC 3339 times, kebab-case enums) and back unchanged,
    /// as the daemon's API and `--output json` carry them.
    async fn records_round_trip_through_json(ctx) {
        let s = &ctx.store;
        let b = s.record_build(&build("web", "web:1")).await.unwrap();
        let r = s.next_revision(&revision("web", "prod", "web:1")).await.unwrap();
        let r = s.set_revision_status("web", "prod", r.number, RevisionStatus::RolledBack, Some("x")).await.unwrap();
        let ro = s.create_rollout(&rollout("web", 1)).await.unwrap();
        let ro = s.finish_rollout(ro.id, RolloutOutcome::RolledBack, None, &json!({}), "done").await.unwrap();
        let ev = s.append_event(ro.id, "k", &json!({"a": [1, 2]})).await.unwrap();
        let lock = s.acquire_lock("web", "prod", "me", "deploy", Duration::from_secs(5)).await.unwrap();

        let rj = serde_json::to_value(&r).unwrap();
        assert_eq!(rj["status"], "rolled-back");
        assert!(rj["created_at"].as_str().unwrap().ends_with('Z'), "{rj}");
        let roj = serde_json::to_value(&ro).unwrap();
        assert_eq!(roj["outcome"], "rolled-back");
        assert_eq!(roj["id"], json!(ro.id.get()));
        assert_eq!(serde_json::to_value(&lock).unwrap()["outcome"], "acquired");

        assert_eq!(serde_json::from_value::<ferry_store::BuildRecord>(serde_json::to_value(&b).unwrap()).unwrap(), b);
        assert_eq!(serde_json::from_value::<ferry_store::Revision>(rj).unwrap(), r);
        assert_eq!(serde_json::from_value::<ferry_store::Rollout>(roj).unwrap(), ro);
        assert_eq!(serde_json::from_value::<ferry_store::Event>(serde_json::to_value(&ev).unwrap()).unwrap(), ev);
        assert_eq!(serde_json::from_value::<LockOutcome>(serde_json::to_value(&lock).unwrap()).unwrap(), lock);
    }

    /// Analysis verdicts come back in recording order.
    async fn verdicts_keep_order(ctx) {
        let s = &ctx.store;
        let r = s.create_rollout(&rollout("web", 1)).await.unwrap();
        for step in [1, 3, 3] {
            s.record_verdict(r.id, step, &json!({"pass": step == 1})).await.unwrap();
        }
        let v = s.verdicts(r.id).await.unwrap();
        assert_eq!(v.iter().map(|v| v.step).collect::<Vec<_>>(), vec![1, 3, 3]);
        assert_eq!(v[0].verdict, json!({"pass": true}));
        assert!(v.windows(2).all(|w| w[0].seq < w[1].seq));
        let err = s.record_verdict(RolloutId::new(424_242), 0, &json!({})).await.unwrap_err();
        assert!(matches!(err, Error::RolloutNotFound { .. }), "{err:?}");
    }

    /// The audit log records who did what, newest first, filterable by app.
    async fn audit_log_records_actions(ctx) {
        let s = &ctx.store;
        for (actor, action, app) in [("alice", "deploy", Some("web")), ("bob", "secrets.set", Some("api")), ("daemon", "start", None)] {
            s.audit(&NewAuditEntry {
                actor: actor.to_owned(),
                action: action.to_owned(),
                app: app.map(str::to_owned),
                env: app.map(|_| "production".to_owned()),
                detail: app.map(|a| json!({"app": a})),
            })
            .await
            .unwrap();
        }
        let all = s.audit_log(None, 10).await.unwrap();
        assert_eq!(all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), vec!["start", "secrets.set", "deploy"]);
        assert_eq!(all[0].detail, None);
        assert_eq!(all[2].detail, Some(json!({"app": "web"})));
        let web = s.audit_log(Some("web"), 10).await.unwrap();
        assert_eq!(web.len(), 1);
        assert_eq!(web[0].actor, "alice");
        assert_eq!(s.audit_log(None, 1).await.unwrap().len(), 1);
    }

    /// Secrets round-trip through set/get/list/remove and are scoped per app+env.
    async fn secrets_round_trip(ctx) {
        let secrets = ctx.store.secrets(&ctx.dir.join("keys/secret.key")).unwrap();
        let db = SecretValue::from("postgres://app:hunter2@db/app");
        secrets.set("web", "prod", "DATABASE_URL", &db).await.unwrap();
        secrets.set("web", "prod", "API_TOKEN", &SecretValue::new(vec![0u8, 159, 146, 150])).await.unwrap();
        secrets.set("web", "staging", "DATABASE_URL", &SecretValue::from("staging-value")).await.unwrap();

        assert_eq!(secrets.get("web", "prod", "DATABASE_URL").await.unwrap(), Some(db.clone()));
        assert_eq!(secrets.get("web", "prod", "API_TOKEN").await.unwrap().unwrap().expose(), &[0u8, 159, 146, 150]);
        assert_eq!(secrets.get("web", "staging", "DATABASE_URL").await.unwrap().unwrap().expose_str(), Some("staging-value"));
        assert_eq!(secrets.get("web", "prod", "NOPE").await.unwrap(), None);

        let names: Vec<String> = secrets.list("web", "prod").await.unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, vec!["API_TOKEN", "DATABASE_URL"]);
        let all = secrets.get_all("web", "prod").await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1], ("DATABASE_URL".to_owned(), db));

        secrets.set("web", "prod", "DATABASE_URL", &SecretValue::from("rotated")).await.unwrap();
        assert_eq!(secrets.get("web", "prod", "DATABASE_URL").await.unwrap().unwrap().expose_str(), Some("rotated"));

        assert!(secrets.remove("web", "prod", "API_TOKEN").await.unwrap());
        assert!(!secrets.remove("web", "prod", "API_TOKEN").await.unwrap());
        assert_eq!(secrets.list("web", "prod").await.unwrap().len(), 1);

        // A second handle with the same key file reads the same values.
        let again = ctx.store.secrets(&ctx.dir.join("keys/secret.key")).unwrap();
        assert_eq!(again.get("web", "prod", "DATABASE_URL").await.unwrap().unwrap().expose_str(), Some("rotated"));
    }

    /// Another key cannot read the secrets, and the error does not leak the value.
    async fn secrets_need_their_key(ctx) {
        let right = ctx.store.secrets(&ctx.dir.join("right.key")).unwrap();
        right.set("web", "prod", "TOKEN", &SecretValue::from("tok-123456789")).await.unwrap();
        let wrong = ctx.store.secrets(&ctx.dir.join("wrong.key")).unwrap();
        let err = wrong.get("web", "prod", "TOKEN").await.unwrap_err();
        assert!(matches!(err, Error::Decrypt { .. }), "{err:?}");
        let shown = format!("{err} {err:?} {wrong:?}");
        assert!(!shown.contains("tok-123456789"), "{shown}");
        assert!(shown.contains("TOKEN"));
    }

    /// Rotating the key re-encrypts every secret: only the new key reads them afterwards.
    async fn key_rotation_reencrypts_everything(ctx) {
        let old_key = ctx.dir.join("old.key");
        let secrets = ctx.store.secrets(&old_key).unwrap();
        for (app, env, name, value) in [("web", "prod", "A", "a-1"), ("web", "staging", "A", "a-2"), ("api", "prod", "B", "b-1")] {
            secrets.set(app, env, name, &SecretValue::from(value)).await.unwrap();
        }
        let new_key = ctx.dir.join("new").join("secret.key");
        let (count, rotated) = secrets.rotate_key(&new_key).await.unwrap();
        assert_eq!(count, 3);
        let mode = std::fs::metadata(&new_key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(rotated.get("web", "staging", "A").await.unwrap().unwrap().expose_str(), Some("a-2"));
        assert_eq!(rotated.get("api", "prod", "B").await.unwrap().unwrap().expose_str(), Some("b-1"));
        let reopened = ctx.store.secrets(&new_key).unwrap();
        assert_eq!(reopened.get("web", "prod", "A").await.unwrap().unwrap().expose_str(), Some("a-1"));
        let err = secrets.get("web", "prod", "A").await.unwrap_err();
        assert!(matches!(err, Error::Decrypt { .. }), "the old key no longer reads: {err:?}");

        // Rotating onto an existing file is refused and leaves it alone.
        let err = rotated.rotate_key(&old_key).await.unwrap_err();
        assert!(matches!(err, Error::KeyFile { .. }), "{err:?}");
        assert_eq!(reopened.list("web", "prod").await.unwrap().len(), 1);

        // A secret the current key cannot read aborts the rotation: nothing changes.
        let stranger = ctx.store.secrets(&ctx.dir.join("stranger.key")).unwrap();
        stranger.set("web", "prod", "FOREIGN", &SecretValue::from("f")).await.unwrap();
        let third = ctx.dir.join("third.key");
        let err = rotated.rotate_key(&third).await.unwrap_err();
        assert!(matches!(err, Error::Decrypt { .. }), "{err:?}");
        assert!(!third.exists(), "the unused new key file is removed");
        assert_eq!(rotated.get("web", "prod", "A").await.unwrap().unwrap().expose_str(), Some("a-1"));
        assert_eq!(stranger.get("web", "prod", "FOREIGN").await.unwrap().unwrap().expose_str(), Some("f"));
    }

    /// The plaintext is nowhere in the stored data; on SQLite, nowhere in the files.
    async fn secrets_are_not_stored_in_plaintext(ctx) {
        let plaintext = "correct-horse-battery-staple-31337";
        let secrets = ctx.store.secrets(&ctx.dir.join("secret.key")).unwrap();
        secrets.set("web", "prod", "PASSWORD", &SecretValue::from(plaintext)).await.unwrap();
        ctx.store.audit(&NewAuditEntry {
            actor: "alice".to_owned(),
            action: "secrets.set".to_owned(),
            app: Some("web".to_owned()),
            env: Some("prod".to_owned()),
            detail: Some(json!({"name": "PASSWORD"})),
        }).await.unwrap();
        match ctx.kind {
            Kind::Sqlite => {
                // Checkpoint so the main file has the data, then read every file (db, -wal, -shm).
                ctx.store.close().await;
                let bytes = all_bytes_under(&ctx.dir.join("state"));
                assert!(bytes.len() > 4096);
                assert!(contains(&bytes, b"PASSWORD"), "the name is stored in clear, the value is not");
                assert!(!contains(&bytes, plaintext.as_bytes()), "plaintext found in the SQLite files");
            }
            Kind::Postgres => {
                use sqlx::Connection;
                let mut conn = sqlx::postgres::PgConnection::connect(&ctx.location).await.unwrap();
                let dump: Vec<(String,)> = sqlx::query_as(
                    "SELECT concat_ws('|', app, env, name, encode(ciphertext, 'escape'), encode(nonce, 'escape')) FROM secrets",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap();
                assert_eq!(dump.len(), 1);
                assert!(dump[0].0.contains("PASSWORD"));
                assert!(!dump[0].0.contains(plaintext), "plaintext found in the secrets table");
                let (raw,): (Vec<u8>,) = sqlx::query_as("SELECT ciphertext FROM secrets").fetch_one(&mut conn).await.unwrap();
                assert!(!contains(&raw, plaintext.as_bytes()));
                conn.close().await.unwrap();
            }
        }
    }

    /// The key file is created once with mode 0600 in a 0700 directory, and reused.
    async fn key_file_is_private(ctx) {
        let key = ctx.dir.join("fresh-dir").join("secret.key");
        ctx.store.secrets(&key).unwrap();
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "key file mode {mode:o}");
        let dir_mode = std::fs::metadata(key.parent().unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700, "key dir mode {dir_mode:o}");
        let content = std::fs::read_to_string(&key).unwrap();
        assert_eq!(content.trim().len(), 64);
        ctx.store.secrets(&key).unwrap();
        assert_eq!(std::fs::read_to_string(&key).unwrap(), content, "an existing key is never replaced");
        let leftovers = std::fs::read_dir(key.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files are left behind");

        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = ctx.store.secrets(&key).unwrap_err();
        assert!(matches!(err, Error::KeyFilePermissions { mode: 0o644, .. }), "{err:?}");
        assert!(err.to_string().contains("chmod 600"));

        let bad = ctx.dir.join("bad.key");
        std::fs::write(&bad, "not a key").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(ctx.store.secrets(&bad).unwrap_err(), Error::KeyFileInvalid { .. }));
    }
}

/// A backup taken while the store is open is a complete, openable store.
#[tokio::test]
async fn sqlite_backup_is_a_complete_store() {
    common::run(Kind::Sqlite, |ctx| async move {
        let s = &ctx.store;
        let b = s.record_build(&build("hello", "hello:1")).await.unwrap();
        s.next_revision(&revision("web", "prod", "img:1"))
            .await
            .unwrap();
        let secrets = s.secrets(&ctx.dir.join("secret.key")).unwrap();
        secrets
            .set("web", "prod", "TOKEN", &SecretValue::from("backup-me"))
            .await
            .unwrap();
        let dest = ctx.dir.join("backups").join("state-backup.db");
        s.backup(&dest).await.unwrap();
        // A second backup to an existing file is refused by SQLite, never overwritten.
        assert!(s.backup(&dest).await.is_err());

        let restored = Store::open(dest.to_str().unwrap()).await.unwrap();
        assert_eq!(restored.builds("hello", 5).await.unwrap(), vec![b]);
        assert_eq!(restored.revisions("web", "prod").await.unwrap().len(), 1);
        let next = restored
            .next_revision(&revision("web", "prod", "img:2"))
            .await
            .unwrap();
        assert_eq!(next.number, 2);
        let restored_secrets = restored.secrets(&ctx.dir.join("secret.key")).unwrap();
        let value = restored_secrets
            .get("web", "prod", "TOKEN")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(value.expose_str(), Some("backup-me"));
        restored.close().await;
    })
    .await;
}

#[tokio::test]
async fn postgres_backup_points_to_pg_dump() {
    common::run(Kind::Postgres, |ctx| async move {
        let err = ctx.store.backup(&ctx.dir.join("x.db")).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::BackupUnsupported {
                    backend: Backend::Postgres
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("pg_dump"));
    })
    .await;
}

/// `?sslmode=require` makes the store's own connections use TLS (Debian's cluster
/// serves its snakeoil certificate; `require` encrypts without verifying it).
#[tokio::test]
async fn postgres_connections_use_tls_when_asked() {
    use sqlx::Connection;
    let (url, name) = common::create_postgres_database().await;
    let mut admin = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
    let (ssl,): (String,) = sqlx::query_as("SHOW ssl")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    if ssl != "on" {
        common::drop_postgres_database(&name).await;
        panic!(
            "the test PostgreSQL server has ssl = {ssl}: Debian's clusters enable it with the \
             snakeoil certificate of the ssl-cert package (make-ssl-cert generate-default-snakeoil)"
        );
    }
    let app_name = format!("ferry-tls-{name}");
    let tls_url = format!("{url}?sslmode=require&application_name={app_name}");
    let result = async move {
        let store = Store::open(&tls_url).await.expect("open over TLS");
        store
            .record_build(&build("hello", "hello:tls"))
            .await
            .unwrap();
        let mut admin = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
        let ssl: Vec<(bool,)> = sqlx::query_as(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1",
        )
        .bind(&app_name)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        admin.close().await.unwrap();
        store.close().await;
        ssl
    };
    let ssl = tokio::spawn(result).await;
    common::drop_postgres_database(&name).await;
    let ssl = ssl.unwrap();
    assert!(
        !ssl.is_empty(),
        "the store's connection was not found in pg_stat_activity"
    );
    assert!(
        ssl.iter().all(|(on,)| *on),
        "connection without TLS: {ssl:?}"
    );
}

/// A relative path is relative to the current directory (what `.ferry/state.db` means).
#[tokio::test]
async fn relative_sqlite_path_opens_under_the_current_directory() {
    // Each test runs in its own process under nextest, so changing directory is local.
    let dir = tempfile::tempdir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    let store = Store::open(".ferry/state.db").await.unwrap();
    store
        .record_build(&build("hello", "hello:1"))
        .await
        .unwrap();
    store.close().await;
    assert!(dir.path().join(".ferry/state.db").is_file());
}

/// Several processes (here: tasks) opening one fresh SQLite file at once all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_open_of_sqlite_file() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join(".ferry")
            .join("state.db")
            .display()
            .to_string();
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let path = path.clone();
                tokio::spawn(async move { Store::open(&path).await })
            })
            .collect();
        for task in tasks {
            let store = task
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
            store
                .record_build(&build("hello", "hello:1"))
                .await
                .unwrap();
            store.close().await;
        }
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.builds("hello", 100).await.unwrap().len(), 6);
        store.close().await;
    }
}

/// Concurrent first use of one key file yields one key shared by all.
#[test]
fn concurrent_key_creation_agrees_on_one_key() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(common::run(Kind::Sqlite, |ctx| async move {
        let key = ctx.dir.join("k").join("secret.key");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = ctx.store.clone();
                let key = key.clone();
                std::thread::spawn(move || store.secrets(&key).map(|_| ()))
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        let writer = ctx.store.secrets(&key).unwrap();
        writer
            .set("a", "b", "c", &SecretValue::from("v"))
            .await
            .unwrap();
        assert_eq!(std::fs::read_dir(key.parent().unwrap()).unwrap().count(), 1);
    }));
}

#[tokio::test]
async fn unsupported_locations_are_rejected() {
    for bad in ["mysql://u:pw@h/db", "sqlite::memory:", ""] {
        let err = Store::open(bad).await.unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedLocation { .. }),
            "{bad}: {err:?}"
        );
        assert!(!err.to_string().contains(":pw@"), "{err}");
    }
}

#[tokio::test]
async fn unreachable_postgres_error_hides_the_password() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let err = Store::open("postgres://ferry:topsecret@127.0.0.1:1/ferry")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("127.0.0.1:1"), "{shown}");
    assert!(!shown.contains("topsecret"), "{shown}");
}

#[tokio::test]
async fn sqlite_file_and_parent_directories_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a b").join("c#d").join("state.db");
    let store = Store::open(path.to_str().unwrap()).await.unwrap();
    store
        .record_build(&build("hello", "hello:1"))
        .await
        .unwrap();
    store.close().await;
    assert!(path.is_file());
    let url = format!("sqlite://{}", dir.path().join("via-url.db").display());
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.close().await;
    assert!(dir.path().join("via-url.db").is_file());
}

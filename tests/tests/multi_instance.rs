//! Two `pix-host` processes on one fresh PostgreSQL database (a smoke of
//! `examples/multi_instance.rs`, docs/operations.md): `--role all` and `--role workers`, with the
//! simulators in a process of their own. A policy activation made through one instance reaches
//! the other by NOTIFY (its polling is set to ten minutes, so nothing else could bring it), and
//! under a short load of cash-outs and cash-ins the two instances' workers compete for the same
//! jobs and webhook deliveries: each runs once, and the money checks of the kill test hold.
//! Skipped (with a message) only when `PIX_TEST_DATABASE_URL` is not set.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pix_e2e::PG_ENV;
use pix_e2e::cluster::{self, Cluster, ClusterOptions, Load};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_follow_an_activation_by_notify_and_run_each_job_once() {
    let options = ClusterOptions { policy_poll_ms: 600_000, ..ClusterOptions::default() };
    let Some(mut cluster) = Cluster::create("pix_smoke", &["all", "workers"], &options).await.unwrap() else {
        eprintln!("skipped: {PG_ENV} is not set (several instances need PostgreSQL)");
        return;
    };
    let setup = cluster.start_with_tenant(0).await.unwrap();
    let (admin, tenant) = (&setup.admin, &setup.tenant);
    let api = cluster.hosts[0].url.clone();

    // The activation reaches the workers instance, which only NOTIFY can tell within the deadline.
    let sha = cluster::shipped_sha256("example-institution").unwrap();
    assert!(cluster.policy_applied(1, &sha).is_empty(), "not active anywhere before the activation");
    cluster::activate_fee(&api, admin, &sha, &tenant.id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.policy_applied(1, &sha).is_empty() {
        assert!(Instant::now() < deadline, "the workers instance never applied the activation made on the other");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A short load, both instances' workers claiming from the same queues.
    let load = Load::new(&cluster, tenant, vec![api.clone()]);
    let tasks = load.spawn(2, 4);
    tokio::time::sleep(Duration::from_secs(4)).await;
    load.stop(tasks).await;
    let verdict = setup.settle_and_check(&cluster, &load, Duration::from_secs(60)).await.unwrap();

    assert!(verdict.violations.is_empty(), "{:#?}", verdict.violations);
    assert!(load.counts.cashouts_accepted.load(Ordering::Relaxed) > 0, "the load paid nothing");
    assert!(load.counts.cashins_sent.load(Ordering::Relaxed) > 0, "the load received nothing");
    assert!(verdict.jobs_done > 0, "no job ran");
    assert_eq!(verdict.jobs_retried, 0, "with no instance lost, no job is claimed twice");
    assert_eq!(verdict.webhook_duplicates, 0, "with no instance lost, no webhook is sent twice");
}

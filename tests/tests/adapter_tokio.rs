//! The adapter scenarios on tokio, on both of its schedulers.

use kontiki_tests::live::{elect_replicate_fail_over, starter};
use kontiki_tokio::TokioRuntime;

fn three_tokio_nodes() -> Vec<kontiki_tests::live::Starter> {
    (0..3).map(|_| starter(TokioRuntime::current())).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn three_nodes_elect_replicate_and_fail_over_on_tokio_current_thread() {
    elect_replicate_fail_over(
        TokioRuntime::current(),
        three_tokio_nodes(),
        "tokio-current-thread",
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_replicate_and_fail_over_on_tokio_multi_thread() {
    elect_replicate_fail_over(
        TokioRuntime::current(),
        three_tokio_nodes(),
        "tokio-multi-thread",
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn three_nodes_elect_replicate_and_fail_over_in_process() {
    let network = kontiki_tests::in_process::InProcess::new(TokioRuntime::current());
    let starters = (0..3).map(|_| starter(network.clone())).collect();
    elect_replicate_fail_over(network, starters, "in-process")
        .await
        .unwrap();
}

//! One cluster, three runtimes: a node on tokio, one on smol, one on
//! async-std elect, replicate and fail over — the adapters speak one
//! protocol. (Whichever node leads first is shut down, so each run fails
//! over from a different runtime depending on the election.)

use kontiki_tests::live::{elect_replicate_fail_over, starter};
use kontiki_tokio::TokioRuntime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_smol_and_async_std_nodes_form_one_cluster() {
    let starters = vec![
        starter(TokioRuntime::current()),
        starter(kontiki_smol::runtime()),
        starter(kontiki_async_std::runtime()),
    ];
    elect_replicate_fail_over(TokioRuntime::current(), starters, "mixed")
        .await
        .unwrap();
}

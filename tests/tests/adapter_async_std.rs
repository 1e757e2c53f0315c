//! The adapter scenarios on async-std.

use kontiki_tests::live::{elect_replicate_fail_over, starter};

#[test]
fn three_nodes_elect_replicate_and_fail_over_on_async_std() {
    let starters = (0..3)
        .map(|_| starter(kontiki_async_std::runtime()))
        .collect();
    async_std::task::block_on(elect_replicate_fail_over(
        kontiki_async_std::runtime(),
        starters,
        "async-std",
    ))
    .unwrap();
}

//! The adapter scenarios on smol.

use kontiki_tests::live::{elect_replicate_fail_over, starter};

#[test]
fn three_nodes_elect_replicate_and_fail_over_on_smol() {
    let starters = (0..3).map(|_| starter(kontiki_smol::runtime())).collect();
    smol::block_on(elect_replicate_fail_over(
        kontiki_smol::runtime(),
        starters,
        "smol",
    ))
    .unwrap();
}

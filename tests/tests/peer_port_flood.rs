//! A flood of idle connections on the leader's peer port cannot keep a
//! member out: a follower restarted while hundreds of strangers hold
//! connections open (and keep opening more) gets back in, and the
//! cluster — which needs that follower, its third node being down —
//! commits again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kontiki_driver::tls::{CertificateAuthority, Validity};
use kontiki_driver::{NodeConfig, PeerTls, StartError, TlsPem};
use kontiki_tests::live::{agreed_leader, cluster_configs, free_addresses, propose_all, Recorder};
use kontiki_tokio::{Handle, MemoryStorage, TokioRuntime};
use tokio::net::TcpStream;

/// Opens connections to `target` without ever sending a byte, one every
/// `every`, and holds each open until the node closes it, up to `held` at
/// once, until `stop`; counts the connections opened.
fn flood(
    target: SocketAddr,
    held: usize,
    every: Duration,
    stop: Arc<AtomicBool>,
    opened: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections: Vec<TcpStream> = Vec::new();
        let mut byte = [0u8; 1];
        while !stop.load(Ordering::Relaxed) {
            // Forget the connections the node closed.
            connections.retain(|stream| {
                matches!(stream.try_read(&mut byte),
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock)
            });
            if connections.len() < held {
                if let Ok(stream) = TcpStream::connect(target).await {
                    opened.fetch_add(1, Ordering::Relaxed);
                    connections.push(stream);
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}

async fn member_gets_back_in_under_a_flood(configs: Vec<NodeConfig>) {
    let runtime = TokioRuntime::current();
    let stores: Vec<MemoryStorage> = configs.iter().map(|_| MemoryStorage::new()).collect();
    let mut nodes: Vec<Option<Handle<Recorder>>> = Vec::new();
    for (config, store) in configs.iter().zip(&stores) {
        let node = kontiki_tokio::start(config.clone(), store.clone(), Recorder::default())
            .await
            .unwrap();
        nodes.push(Some(node));
    }
    let running: Vec<Handle<Recorder>> = nodes.iter().flatten().cloned().collect();
    let leader = agreed_leader(&runtime, &running, None).await.unwrap();
    let followers: Vec<usize> = (0..3).filter(|&n| n != leader).collect();
    let (restarted, down) = (followers[0], followers[1]);
    let target = running[leader].local_addr();
    drop(running);

    // One follower goes for good: every commit now needs the other.
    nodes[down].take().unwrap().shutdown().await;

    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let flooding = flood(
        target,
        300,
        Duration::from_millis(2),
        Arc::clone(&stop),
        Arc::clone(&opened),
    );
    // Let the flood fill every place first.
    while opened.load(Ordering::Relaxed) < 300 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The other follower restarts: its connection to the leader is new.
    nodes[restarted].take().unwrap().shutdown().await;
    // Its port may be held a moment by one of the flood's own sockets
    // (it was an ephemeral port): try again until it is free.
    let mut attempts = 0;
    let node = loop {
        let started = kontiki_tokio::start(
            configs[restarted].clone(),
            stores[restarted].clone(),
            Recorder::default(),
        )
        .await;
        match started {
            Ok(node) => break node,
            Err(StartError::Bind { .. }) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("cannot restart the follower: {error}"),
        }
    };
    nodes[restarted] = Some(node);
    let running: Vec<Handle<Recorder>> = nodes.iter().flatten().cloned().collect();
    let committed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            // Whichever of the two leads (the leader may have stepped
            // down meanwhile, not hearing from a majority).
            if let Ok(leader) = agreed_leader(&runtime, &running, None).await {
                if let Ok(committed) =
                    propose_all(&running[leader], (0..10u8).map(|n| vec![n])).await
                {
                    return committed;
                }
            }
        }
    })
    .await
    .expect("no write committed while the flood lasted");
    assert_eq!(committed.len(), 10);
    assert!(
        opened.load(Ordering::Relaxed) > 300,
        "the flood kept going through the test"
    );
    stop.store(true, Ordering::Relaxed);
    flooding.await.unwrap();
    for node in nodes.into_iter().flatten() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_cannot_keep_a_member_out() {
    let configs = cluster_configs(&free_addresses(3), "flooded");
    member_gets_back_in_under_a_flood(configs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nor_can_it_keep_a_tls_member_out() {
    let ca = CertificateAuthority::generate(Validity::days_from_now(1)).unwrap();
    let configs = cluster_configs(&free_addresses(3), "flooded")
        .into_iter()
        .map(|mut config| {
            let issued = ca
                .issue(config.id, Validity::days_from_now(1), &[])
                .unwrap();
            let pem = TlsPem {
                ca: ca.cert_pem().as_bytes(),
                cert: issued.cert_pem.as_bytes(),
                key: issued.key_pem.as_bytes(),
            };
            config.tls = Some(PeerTls::from_pem(config.id, pem).unwrap());
            config
        })
        .collect();
    member_gets_back_in_under_a_flood(configs).await;
}

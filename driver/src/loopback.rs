//! Loopback addresses for clusters that run on one machine: tests, demos
//! and benchmarks, which must name every node's address before any node
//! starts.
//!
//! The usual trick (bind port 0, note the port, release it) races with
//! every outgoing connection on the machine: the kernel gives those ports
//! from the same ephemeral range, so between the release and the node's
//! own bind, a connection — often one node dialling another that has not
//! started yet — can take the port, and the node then fails with
//! "address in use". Worse, a node dialling a port nobody listens on yet
//! can be handed that very port as its source and connect to itself.
//! Ports below the ephemeral range are never handed out that way, so this
//! module picks from there, checking each by binding it.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port this module hands out.
const LOWEST: u16 = 16_384;

/// Where the ephemeral range starts where the kernel does not say: the
/// IANA's dynamic ports, which macOS and Windows use.
const EPHEMERAL_START_ELSEWHERE: u16 = 49_152;

/// How many candidates this process has tried; each call goes on from
/// here, so that calls in one process never repeat a port while it may
/// still be about to be bound.
static TRIED: AtomicU32 = AtomicU32::new(0);

/// A loopback address (`127.0.0.1`) that no socket held a moment ago, on a
/// port the kernel does not give to outgoing connections: a node told to
/// listen there later will find it free unless another process binds it
/// on purpose.
///
/// Successive calls in one process return different ports; processes
/// start at different places (by process id), so test binaries run side
/// by side rarely meet. Where the machine has no room below its ephemeral
/// range, it falls back to a port the kernel picks (bound and released).
///
/// # Errors
/// Only if no loopback port can be bound at all.
pub fn unused_loopback_address() -> io::Result<SocketAddr> {
    let end = ephemeral_start();
    let span = u32::from(end.saturating_sub(LOWEST));
    let start = std::process::id().wrapping_mul(7_919) % span.max(1);
    let candidates = (0..span).map(|_| {
        let tried = TRIED.fetch_add(1, Ordering::Relaxed);
        LOWEST + ((start + tried) % span) as u16
    });
    match first_free(candidates) {
        Some(address) => Ok(address),
        None => TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr(),
    }
}

/// The first of `ports` that binds on loopback, released again.
fn first_free(ports: impl Iterator<Item = u16>) -> Option<SocketAddr> {
    ports
        .filter_map(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).ok())
        .find_map(|listener| listener.local_addr().ok())
}

/// The first port of the kernel's ephemeral range.
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(EPHEMERAL_START_ELSEWHERE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_free_and_below_the_ephemeral_range() {
        let addresses: Vec<SocketAddr> = (0..64)
            .map(|_| unused_loopback_address().unwrap())
            .collect();
        let mut ports: Vec<u16> = addresses.iter().map(SocketAddr::port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), addresses.len(), "{addresses:?}");
        let end = ephemeral_start();
        for address in &addresses {
            assert!(address.ip().is_loopback());
            if end > LOWEST {
                assert!((LOWEST..end).contains(&address.port()), "{address}");
            }
        }
        // Every one can be bound now.
        for address in &addresses {
            TcpListener::bind(address).unwrap();
        }
    }

    #[test]
    fn a_port_in_use_is_passed_over() {
        let [taken, free] = [(); 2].map(|()| unused_loopback_address().unwrap());
        let _held = TcpListener::bind(taken).unwrap();
        assert_eq!(
            first_free([taken.port(), free.port()].into_iter()),
            Some(free)
        );
        assert_eq!(first_free([taken.port()].into_iter()), None);
    }
}

"""A flood of idle connections on the leader's peer port, against three
`kontiki node` processes: one follower is stopped for good, the flood
holds up to 300 connections that never send a byte (re-opened as the
node closes them, one every 2 ms), the other follower is restarted, and
then `SET`s are sent one at a time through redis-py for 10 seconds.
Prints how many succeeded. With `--no-flood`, the same without the
flood, for comparison; with `--tls`, the nodes link over mutual TLS.

    python3 cli/benches/peer_flood.py target/release/kontiki [--tls] [--no-flood] [--base-port N]

Needs redis-py (pip install redis). tests/tests/peer_port_flood.rs is
the checked form of the same attack, in one process.
"""

import argparse
import os
import socket
import subprocess
import tempfile
import threading
import time

import redis

HELD = 300
EVERY = 0.002
WRITING = 10.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("kontiki")
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--no-flood", action="store_true")
    parser.add_argument("--base-port", type=int, default=27000)
    options = parser.parse_args()
    data = tempfile.mkdtemp()
    if options.tls:
        subprocess.run([options.kontiki, "cert", "--dir", f"{data}/certs", "--nodes", "1,2,3"],
                       check=True, capture_output=True)
    peer = {i: options.base_port + i for i in (1, 2, 3)}
    client = {i: options.base_port + 100 + i for i in (1, 2, 3)}

    def arguments(i):
        line = [options.kontiki, "node", f"--id={i}", f"--listen=127.0.0.1:{peer[i]}",
                f"--client=127.0.0.1:{client[i]}", f"--data-dir={data}/node-{i}"]
        line += [f"--peer={j}=127.0.0.1:{peer[j]},127.0.0.1:{client[j]}" for j in (1, 2, 3) if j != i]
        if options.tls:
            line += [f"--tls-ca={data}/certs/ca.pem", f"--tls-cert={data}/certs/node-{i}.pem",
                     f"--tls-key={data}/certs/node-{i}-key.pem"]
        return line

    quiet = dict(os.environ, RUST_LOG="error")
    start = lambda i: subprocess.Popen(arguments(i), stderr=subprocess.DEVNULL, env=quiet)
    nodes = {i: start(i) for i in (1, 2, 3)}
    try:
        leader = wait_for_leader(client)
        down, restarted = [i for i in (1, 2, 3) if i != leader]
        nodes[down].kill()
        nodes[down].wait()
        stop = threading.Event()
        opened = [0]
        flooding = threading.Thread(target=flood, args=(peer[leader], stop, opened))
        if not options.no_flood:
            flooding.start()
            time.sleep(1.0)
        nodes[restarted].kill()
        nodes[restarted].wait()
        nodes[restarted] = start(restarted)
        succeeded, failed = write_for(client[leader], WRITING)
        stop.set()
        if flooding.is_alive():
            flooding.join()
        print(f"tls={options.tls} flood={not options.no_flood} connections opened={opened[0]} "
              f"writes in {WRITING:.0f} s: {succeeded} succeeded, {failed} failed")
    finally:
        for node in nodes.values():
            node.kill()


def wait_for_leader(client):
    for _ in range(400):
        for i, port in client.items():
            try:
                if redis.Redis(port=port, socket_timeout=1).info("raft").get("role") == "leader":
                    return i
            except redis.exceptions.RedisError:
                pass
        time.sleep(0.05)
    raise SystemExit("no leader")


def flood(port, stop, opened):
    held = []
    while not stop.is_set():
        held = [connection for connection in held if still_open(connection)]
        if len(held) < HELD:
            try:
                connection = socket.create_connection(("127.0.0.1", port), timeout=1)
                connection.setblocking(False)
                held.append(connection)
                opened[0] += 1
            except OSError:
                pass
        time.sleep(EVERY)


def still_open(connection):
    try:
        return connection.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def write_for(port, seconds):
    succeeded = failed = 0
    end = time.time() + seconds
    while time.time() < end:
        try:
            if redis.Redis(port=port, socket_timeout=1).set(f"k{succeeded}", "v"):
                succeeded += 1
        except redis.exceptions.RedisError:
            failed += 1
            time.sleep(0.01)
    return succeeded, failed


if __name__ == "__main__":
    main()

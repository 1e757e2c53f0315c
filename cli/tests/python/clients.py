"""redis-py against a kontiki node cluster, as its users call it.

Run by cli/tests/redis_py.rs with the client addresses of a three-node
cluster (the leader's first) and a phase: "before" the leader is killed,
or "after". Exits non-zero (an assertion) on anything unexpected.
"""

import sys
import time

import redis
from redis.cluster import ClusterNode, RedisCluster


def check_before(leader_host, leader_port, follower_port):
    for protocol in (2, 3):
        # Defaults, as a new user writes them (HELLO, CLIENT SETINFO ...).
        r = redis.Redis(host=leader_host, port=leader_port, protocol=protocol)
        assert r.ping()
        r.flushall()
        assert r.set("greeting", "hello")
        assert r.get("greeting") == b"hello"
        assert r.get("missing") is None
        assert r.incr("counter") == 1
        assert r.incr("counter", 4) == 5
        assert r.decr("counter", 2) == 3
        assert r.mset({"a": "1", "b": "2"})
        assert r.mget("a", "b", "c") == [b"1", b"2", None]
        assert r.set("a", "9", nx=True) is None
        assert r.set("a", "9", xx=True, get=True) == b"1"
        assert r.append("a", "x") == 2
        assert r.strlen("a") == 2
        assert r.type("a") == b"string"
        assert sorted(r.keys("[ab]")) == [b"a", b"b"]
        assert r.client_setname("py-test")
        assert r.client_getname() in ("py-test", b"py-test")
        assert len(r.time()) == 2
        # A plain pipeline, and the default transactional one (MULTI/EXEC).
        plain = r.pipeline(transaction=False)
        plain.set("p", 1).get("p").delete("p")
        assert plain.execute() == [True, b"1", 1]
        atomic = r.pipeline()
        atomic.set("t", "x").incr("counter").get("t").exists("t", "nope")
        assert atomic.execute() == [True, 4, b"x", 1]
        # An error inside a transaction answers that command only.
        failing = r.pipeline()
        failing.set("u", "x").incr("u").get("u")
        try:
            failing.execute()
            raise AssertionError("INCR on text did not fail")
        except redis.ResponseError as error:
            assert "not an integer" in str(error)
        assert r.get("u") == b"x"
        assert r.unlink("u", "t") == 2
        assert r.info("raft")["role"] == "leader"

    # The cluster client, started from a follower.
    cluster = RedisCluster(startup_nodes=[ClusterNode(leader_host, follower_port)])
    primaries = [node.port for node in cluster.get_nodes() if node.server_type == "primary"]
    assert primaries == [leader_port], primaries
    assert cluster.set("cluster-key", "before")
    assert cluster.get("cluster-key") == b"before"
    assert cluster.mget_nonatomic(["a", "b"]) == [b"9x", b"2"]


def check_after(host, port, old_leader_port):
    deadline = time.time() + 30
    while True:
        try:
            cluster = RedisCluster(startup_nodes=[ClusterNode(host, port)])
            assert cluster.set("cluster-key", "after")
            break
        # Until a new leader is elected the cluster is down, and until the
        # followers notice the old one is gone (an election timeout) they
        # still name it, and it is unreachable: a client retries, as after
        # any failover.
        except (
            redis.exceptions.ConnectionError,
            redis.exceptions.ClusterDownError,
            redis.exceptions.TryAgainError,
            redis.exceptions.RedisClusterException,
        ):
            assert time.time() < deadline, "no write after the leader was killed"
            time.sleep(0.1)
    assert cluster.get("cluster-key") == b"after"
    assert cluster.get("counter") == b"4"
    primaries = [node.port for node in cluster.get_nodes() if node.server_type == "primary"]
    assert primaries and primaries != [old_leader_port], primaries


def main():
    phase, host = sys.argv[1], sys.argv[2]
    ports = [int(port) for port in sys.argv[3:]]
    if phase == "before":
        check_before(host, ports[0], ports[1])
    else:
        check_after(host, ports[0], ports[1])
    print("ok", phase)


if __name__ == "__main__":
    main()

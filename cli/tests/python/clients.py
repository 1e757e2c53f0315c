"""redis-py against a kontiki node cluster, as its users call it.

Run by cli/tests/redis_py.rs with the client addresses of a three-node
cluster (the leader's first) and a phase: "before" the leader is killed,
or "after"; or with "secure", a node's host and port, its CA file and
password (a node serving clients over TLS with --auth-file). Exits
non-zero (an assertion) on anything unexpected.
"""

import sys
import time

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry


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
        check_expiry(r)
        check_hashes(r)
        check_scan(r)
        check_collections(r)
        check_watch(r, redis.Redis(host=leader_host, port=leader_port, protocol=protocol))

    # Keys that expire across the failover of the "after" phase.
    r = redis.Redis(host=leader_host, port=leader_port)
    assert r.set("short", "x", px=1000)
    assert r.set("short-set-at", repr(time.time()))
    assert r.set("long", "x", ex=3600)

    # The cluster client, started from a follower.
    cluster = RedisCluster(startup_nodes=[ClusterNode(leader_host, follower_port)])
    primaries = [node.port for node in cluster.get_nodes() if node.server_type == "primary"]
    assert primaries == [leader_port], primaries
    assert cluster.set("cluster-key", "before")
    assert cluster.get("cluster-key") == b"before"
    assert cluster.mget_nonatomic(["a", "b"]) == [b"9x", b"2"]


def check_expiry(r):
    # A key is gone once its time has come, read right after.
    assert r.set("ephemeral", "x", px=200)
    assert 0 < r.pttl("ephemeral") <= 200
    time.sleep(0.3)
    assert r.get("ephemeral") is None
    assert r.exists("ephemeral") == 0
    assert r.ttl("ephemeral") == -2
    assert r.set("e", "v")
    assert r.ttl("e") == -1
    assert r.expire("e", 100)
    assert r.ttl("e") in (99, 100)
    assert r.persist("e")
    assert not r.persist("e")
    assert r.ttl("e") == -1
    assert r.expire("e", 100, nx=True)
    assert not r.expire("e", 200, nx=True)
    assert not r.expire("e", 200, lt=True)
    assert r.expire("e", 50, lt=True)
    assert r.expire("e", 60, gt=True)
    at = int(time.time()) + 500
    assert r.expireat("e", at)
    assert r.expiretime("e") == at
    assert r.pexpireat("e", at * 1000 + 5)
    assert r.pexpiretime("e") == at * 1000 + 5
    # INCR keeps a key's expiry; SET drops it unless KEEPTTL.
    assert r.set("n", 1, ex=100)
    assert r.incr("n") == 2
    assert r.ttl("n") > 0
    assert r.set("n", 5, keepttl=True)
    assert r.ttl("n") > 0
    assert r.set("n", 6)
    assert r.ttl("n") == -1
    # A time in the past removes the key at once.
    assert r.expire("n", -1)
    assert r.get("n") is None
    assert not r.expire("n", 10)
    try:
        r.set("bad", "x", ex=0)
        raise AssertionError("EX 0 was accepted")
    except redis.ResponseError as error:
        assert "invalid expire time" in str(error)


def check_hashes(r):
    assert r.hset("user:1", mapping={"name": "ada", "age": "36"}) == 2
    assert r.hset("user:1", "lang", "en") == 1
    assert r.hget("user:1", "name") == b"ada"
    assert r.hgetall("user:1") == {b"name": b"ada", b"age": b"36", b"lang": b"en"}
    assert r.hincrby("user:1", "age", 1) == 37
    assert r.hmget("user:1", ["name", "nope"]) == [b"ada", None]
    assert r.hlen("user:1") == 3
    assert r.hexists("user:1", "lang")
    assert not r.hsetnx("user:1", "lang", "fr")
    assert r.hstrlen("user:1", "lang") == 2
    assert sorted(r.hkeys("user:1")) == [b"age", b"lang", b"name"]
    assert sorted(r.hvals("user:1")) == [b"37", b"ada", b"en"]
    assert r.hdel("user:1", "lang", "nope") == 1
    assert r.type("user:1") == b"hash"
    assert r.hgetall("missing") == {}
    try:
        r.get("user:1")
        raise AssertionError("GET on a hash was answered")
    except redis.ResponseError as error:
        assert str(error).startswith("WRONGTYPE"), error


def check_scan(r):
    r.mset({f"scan:{i}": i for i in range(100)})
    found = list(r.scan_iter(match="scan:*", count=7))
    assert sorted(found) == sorted(f"scan:{i}".encode() for i in range(100)), len(found)
    assert list(r.scan_iter(_type="hash")) == [b"user:1"]
    r.delete(*[f"scan:{i}" for i in range(100)])


def check_collections(r):
    r.delete("l", "s", "z", "x")
    assert r.rpush("l", "a", "b", "c") == 3
    assert r.lpush("l", "z") == 4
    assert r.lrange("l", 0, -1) == [b"z", b"a", b"b", b"c"]
    assert r.lpop("l") == b"z"
    assert r.rpop("l", 2) == [b"c", b"b"]
    assert r.llen("l") == 1
    assert r.lindex("l", 0) == b"a"
    assert r.type("l") == b"list"
    assert r.sadd("s", "x", "y", "y") == 2
    assert r.smembers("s") == {b"x", b"y"}
    assert r.sismember("s", "x")
    assert r.scard("s") == 2
    popped = r.spop("s")
    assert popped in (b"x", b"y")
    assert r.srem("s", "x", "y") == 1
    assert r.exists("s") == 0
    assert r.zadd("z", {"a": 1, "b": 2.5, "c": -3}) == 3
    assert r.zrange("z", 0, -1) == [b"c", b"a", b"b"]
    assert [tuple(pair) for pair in r.zrange("z", 0, 1, withscores=True)] == [
        (b"c", -3.0),
        (b"a", 1.0),
    ]
    assert r.zscore("z", "b") == 2.5
    assert r.zcard("z") == 3
    assert [tuple(pair) for pair in r.zpopmin("z", 1)] == [(b"c", -3.0)]
    assert [tuple(pair) for pair in r.zpopmax("z", 2)] == [(b"b", 2.5), (b"a", 1.0)]
    first = r.xadd("x", {"f": "v"})
    second = r.xadd("x", {"f": "w"})
    ids = [tuple(int(part) for part in entry_id.split(b"-")) for entry_id in (first, second)]
    assert ids[0] < ids[1], ids
    assert r.xlen("x") == 2
    entries = r.xrange("x", "-", "+")
    assert [fields for _, fields in entries] == [{b"f": b"v"}, {b"f": b"w"}]
    assert r.type("x") == b"stream"
    r.delete("l", "x")


def check_watch(r, other):
    r.set("w", 1)
    with r.pipeline() as pipe:
        pipe.watch("w")
        value = int(pipe.get("w"))
        pipe.multi()
        pipe.set("w", value + 1)
        assert pipe.execute() == [True]
    assert r.get("w") == b"2"
    with r.pipeline() as pipe:
        pipe.watch("w")
        other.set("w", "changed")
        pipe.multi()
        pipe.set("w", "mine")
        try:
            pipe.execute()
            raise AssertionError("EXEC applied after a watched key changed")
        except redis.WatchError:
            pass
    assert r.get("w") == b"changed"


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
    # Expiry follows the replicated clock across the failover: the short
    # key goes at its time on the new leader, the long one keeps its time.
    set_at = float(cluster.get("short-set-at"))
    time.sleep(max(0.0, set_at + 1.2 - time.time()))
    assert cluster.get("short") is None
    assert 3500 < cluster.ttl("long") <= 3600
    primaries = [node.port for node in cluster.get_nodes() if node.server_type == "primary"]
    assert primaries and primaries != [old_leader_port], primaries


def check_secure(host, port, ca_file, password):
    """A node serving clients over TLS, with a password: redis-py's ssl
    options and password, in RESP2 and RESP3, and its errors without them."""
    for protocol in (2, 3):
        r = redis.Redis(host=host, port=port, ssl=True, ssl_ca_certs=ca_file,
                        password=password, protocol=protocol, decode_responses=True)
        assert r.set(f"secure-{protocol}", "yes")
        assert r.get(f"secure-{protocol}") == "yes"
        r.close()
    # No retries: a refusal is the answer, not a passing fault.
    once = Retry(NoBackoff(), 0)
    wrong = redis.Redis(host=host, port=port, ssl=True, ssl_ca_certs=ca_file,
                        password="guess", retry=once)
    try:
        wrong.ping()
        raise AssertionError("a wrong password was accepted")
    except redis.exceptions.AuthenticationError as error:
        assert "WRONGPASS" in str(error) or "invalid" in str(error), error
    anonymous = redis.Redis(host=host, port=port, ssl=True, ssl_ca_certs=ca_file,
                            retry=once)
    try:
        anonymous.get("secure-2")
        raise AssertionError("a command without AUTH was served")
    except redis.exceptions.AuthenticationError as error:
        # redis-py opens with HELLO: Redis's NOAUTH for it, or for GET.
        message = str(error)
        assert ("Authentication required" in message
                or "must be called with the client already authenticated" in message), error
    plaintext = redis.Redis(host=host, port=port, password=password,
                            socket_timeout=5, retry=once)
    try:
        plaintext.ping()
        raise AssertionError("a plaintext client was served")
    except redis.exceptions.ConnectionError:
        pass


def main():
    phase, host = sys.argv[1], sys.argv[2]
    if phase == "secure":
        check_secure(host, int(sys.argv[3]), sys.argv[4], sys.argv[5])
        print("ok", phase)
        return
    ports = [int(port) for port in sys.argv[3:]]
    if phase == "before":
        check_before(host, ports[0], ports[1])
    else:
        check_after(host, ports[0], ports[1])
    print("ok", phase)


if __name__ == "__main__":
    main()

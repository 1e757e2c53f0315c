//! The client port: a RESP2 server (RESP3 once a connection asks with
//! `HELLO 3`) over any runtime, serving the replicated store.
//!
//! Each connection reads what has arrived, parses every whole request in
//! it, and answers them in order. Consecutive writes are proposed together
//! (so a pipelined batch shares log appends and fsyncs), and consecutive
//! reads share one read barrier, taken after every earlier request of the
//! connection is answered: a connection always reads its own writes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::{join_all, BoxFuture};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use kontiki::{NodeId, Role};
use kontiki_driver::{
    ChangeError, Handle, Member, MemberRole, ProposeError, Runtime, ServerTls, Status,
    TransferError,
};

use crate::auth::{self, Auth};
use crate::client_limits::{
    within, ClientLimits, ClientSlot, OpenClients, FLUSH_REPLIES_AT, MAX_CLIENTS_REACHED,
    STALLED_WRITE,
};
use crate::cluster::{ClusterNode, ClusterView};
use crate::commands::{self, Admin, Command};
use crate::entry::Entry;
use crate::expiry::{self, wall_clock};
use crate::glob;
use crate::kv::{Data, KvStateMachine, Store};
use crate::read;
use crate::resp::{self, Parsed, Replies};
use crate::session::{Connection, Session, Transaction};
use crate::write::{Op, Write};

/// What every connection of one node shares.
pub struct Service {
    /// The node.
    pub handle: Handle<KvStateMachine>,
    /// Its store, read after barriers.
    pub store: Store,
    /// Every node's client address this node knows, its own included.
    pub client_addresses: BTreeMap<NodeId, SocketAddr>,
    /// The client port's limits.
    pub limits: ClientLimits,
    /// The client connections open.
    pub clients: Arc<OpenClients>,
    /// Who may use the port.
    pub auth: Arc<Auth>,
    /// TLS on the port, if the node serves clients over TLS.
    pub tls: Option<ServerTls>,
}

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

/// Accepts clients on `listener` until the process ends.
pub async fn serve<R: Runtime>(runtime: R, listener: R::Listener, service: Arc<Service>) {
    loop {
        match R::accept(&listener).await {
            Ok((stream, remote)) => {
                let slot = service.clients.admit(service.limits.max_clients);
                runtime.spawn(open(
                    runtime.clone(),
                    stream,
                    remote,
                    Arc::clone(&service),
                    slot,
                ));
            }
            Err(error) => {
                // Out of file descriptors, usually: wait rather than spin.
                tracing::warn!(%error, "cannot accept a client connection");
                runtime
                    .sleep_until(runtime.now() + Duration::from_millis(50))
                    .await;
            }
        }
    }
}

/// Serves a new connection in `slot`, or refuses it if it has none —
/// inside TLS if the port has it (a client that fails its handshake is
/// closed, with one log line).
async fn open<R: Runtime, S>(
    runtime: R,
    stream: S,
    remote: SocketAddr,
    service: Arc<Service>,
    slot: Option<ClientSlot>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if slot.is_none() {
        client_refused("max_clients");
    }
    let Some(tls) = service.tls.clone() else {
        return serve_or_refuse(runtime, stream, remote, service, slot).await;
    };
    match within(&runtime, TLS_HANDSHAKE, tls.accept(stream)).await {
        Some(Ok(stream)) => serve_or_refuse(runtime, stream, remote, service, slot).await,
        Some(Err(error)) => {
            client_refused("tls");
            tracing::warn!(%remote, %error, "client TLS handshake failed");
        }
        None => {
            client_refused("tls");
            tracing::warn!(%remote, "client TLS handshake timed out");
        }
    }
}

/// Serves `stream` in `slot`, or answers that there is none and closes it.
async fn serve_or_refuse<R: Runtime, S>(
    runtime: R,
    stream: S,
    remote: SocketAddr,
    service: Arc<Service>,
    slot: Option<ClientSlot>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    match slot {
        Some(slot) => serve_connection(runtime, stream, remote, service, slot).await,
        None => refuse(runtime, stream).await,
    }
}

/// The Redis parameters `CONFIG GET` reports, as they describe this
/// server: no RDB snapshots of Redis's kind, every write durable before
/// it is acknowledged (as `appendfsync always`), one database.
const CONFIG: &[(&str, &str)] = &[
    ("appendfsync", "always"),
    ("appendonly", "yes"),
    ("databases", "1"),
    ("save", ""),
];

/// Where a connection's replies go once they pass [`FLUSH_REPLIES_AT`]
/// bytes in the middle of a batch.
trait Drain: Send {
    /// Writes `replies` out if they pass the limit; `false` if the
    /// connection failed.
    fn drain_if_full<'a>(&'a mut self, replies: &'a mut Replies) -> BoxFuture<'a, bool>;
}

/// A connection's socket, as a [`Drain`].
struct SocketDrain<'a, R, S> {
    runtime: &'a R,
    stream: &'a mut S,
}

impl<R: Runtime, S: AsyncWrite + Unpin + Send> Drain for SocketDrain<'_, R, S> {
    fn drain_if_full<'a>(&'a mut self, replies: &'a mut Replies) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            replies.len() < FLUSH_REPLIES_AT
                || write_out(self.runtime, self.stream, &replies.take()).await
        })
    }
}

/// Whether to keep a connection open after a batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Keep reading.
    Continue,
    /// Answer what is pending, then close.
    Close,
}

/// Answers a connection past the limit, as Redis does, and closes it.
async fn refuse<R: Runtime, S>(runtime: R, mut stream: S)
where
    S: AsyncWrite + Unpin,
{
    let refusal = async {
        stream.write_all(MAX_CLIENTS_REACHED).await?;
        stream.close().await
    };
    let _ = within(&runtime, Duration::from_secs(1), refusal).await;
}

async fn serve_connection<R: Runtime, S>(
    runtime: R,
    mut stream: S,
    remote: SocketAddr,
    service: Arc<Service>,
    _slot: ClientSlot,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut received = BytesMut::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut replies = Replies::new();
    let mut connection = Connection::new(Some(remote));
    connection.authenticated = !service.auth.required();
    loop {
        let read = match service.limits.idle_timeout {
            Some(idle) => match within(&runtime, idle, stream.read(&mut chunk)).await {
                Some(read) => read,
                None => return,
            },
            None => stream.read(&mut chunk).await,
        };
        let read = match read {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        received.extend_from_slice(&chunk[..read]);
        let (requests, mut next) = take_requests(&mut received);
        let mut drain = SocketDrain {
            runtime: &runtime,
            stream: &mut stream,
        };
        if service
            .answer(requests, &mut connection, &mut replies, &mut drain)
            .await
            == Next::Close
        {
            next = Next::Close;
        }
        if !replies.is_empty() && !write_out(&runtime, &mut stream, &replies.take()).await {
            return;
        }
        if next == Next::Close {
            let _ = stream.close().await;
            return;
        }
    }
}

/// Counts a client connection (or its commands) refused for `reason`:
/// `max_clients`, `tls` or `auth`.
fn client_refused(reason: &'static str) {
    metrics::counter!("kontiki_client_connections_refused_total", "reason" => reason).increment(1);
}

/// The refusal of `command` on `connection`, if it has not authenticated
/// and `command` is not one of those it may send before: `AUTH`, `HELLO`
/// with `AUTH`, and `QUIT`. The reply is Redis's `NOAUTH` (logged once
/// per connection).
fn refusal_before_authentication(
    command: &Command,
    connection: &mut Connection,
) -> Option<&'static str> {
    if connection.authenticated {
        return None;
    }
    let refusal = match command {
        Command::Auth { .. }
        | Command::Quit
        | Command::Session(Session::Hello { auth: Some(_), .. }) => return None,
        Command::Session(Session::Hello { auth: None, .. }) => auth::NOAUTH_HELLO,
        _ => auth::NOAUTH,
    };
    log_refusal(connection, "a command before AUTH");
    Some(refusal)
}

/// Logs that `connection` was refused, the first time only.
fn log_refusal(connection: &mut Connection, reason: &str) {
    if !std::mem::replace(&mut connection.refusal_logged, true) {
        client_refused("auth");
        let remote = connection.remote.map(|remote| remote.to_string());
        tracing::warn!(
            remote = remote.as_deref().unwrap_or("?"),
            reason,
            "client refused"
        );
    }
}

/// Writes `bytes` to `stream`; `false` if the connection failed, or took
/// no byte for [`STALLED_WRITE`] (a client that does not read).
async fn write_out<R: Runtime, S>(runtime: &R, stream: &mut S, bytes: &[u8]) -> bool
where
    S: AsyncWrite + Unpin,
{
    let mut written = 0;
    while written < bytes.len() {
        match within(runtime, STALLED_WRITE, stream.write(&bytes[written..])).await {
            Some(Ok(0) | Err(_)) | None => return false,
            Some(Ok(count)) => written += count,
        }
    }
    // TLS holds what was written until flushed (plain TCP has nothing to
    // flush).
    matches!(
        within(runtime, STALLED_WRITE, stream.flush()).await,
        Some(Ok(()))
    )
}

/// Takes every whole request from the front of `received` (what a
/// connection has read and not yet consumed), each parsed or with the
/// error to answer it with, and whether the connection must close.
pub fn take_requests(received: &mut BytesMut) -> (Vec<Result<Command, String>>, Next) {
    let mut requests = Vec::new();
    loop {
        match resp::parse(received) {
            Parsed::Request(ranges, used) => {
                let request = received.split_to(used).freeze();
                let arguments: Vec<Bytes> = ranges.into_iter().map(|r| request.slice(r)).collect();
                // An empty line or array is no request at all.
                if !arguments.is_empty() {
                    requests.push(commands::parse(arguments));
                }
            }
            Parsed::Incomplete => return (requests, Next::Continue),
            Parsed::Malformed(problem, _) => {
                // The framing is lost: nothing after the error is trusted,
                // so nothing after it runs.
                received.clear();
                requests.push(Err(format!("ERR {problem}")));
                return (requests, Next::Close);
            }
            Parsed::TooLarge => {
                requests.push(Err(format!(
                    "ERR Protocol error: request larger than {} bytes or {} arguments",
                    resp::MAX_REQUEST_BYTES,
                    resp::MAX_ARGUMENTS
                )));
                return (requests, Next::Close);
            }
        }
    }
}

impl Service {
    /// Answers `requests` in order, in runs of writes and reads, until
    /// they are all answered or the replies pass [`FLUSH_REPLIES_AT`]
    /// bytes (the rest stay in `requests`).
    async fn answer(
        &self,
        requests: Vec<Result<Command, String>>,
        connection: &mut Connection,
        replies: &mut Replies,
        drain: &mut dyn Drain,
    ) -> Next {
        let mut requests = requests.into_iter().peekable();
        while let Some(request) = requests.next() {
            if !drain.drain_if_full(replies).await {
                return Next::Close;
            }
            if let Some(refusal) = request
                .as_ref()
                .ok()
                .and_then(|command| refusal_before_authentication(command, connection))
            {
                replies.error(refusal);
                continue;
            }
            if connection.transaction.is_some() {
                if self.in_transaction(request, connection, replies).await == Next::Close {
                    return Next::Close;
                }
                continue;
            }
            match request {
                Err(error) => replies.error(&error),
                Ok(Command::Write(write)) => {
                    let mut run = vec![write];
                    while let Some(Ok(Command::Write(write))) =
                        requests.next_if(|next| matches!(next, Ok(Command::Write(_))))
                    {
                        run.push(write);
                    }
                    let now = wall_clock();
                    let proposals = run
                        .iter()
                        .map(|write| self.handle.propose(Entry::encode(write, now)));
                    for outcome in join_all(proposals).await {
                        match outcome {
                            Ok(applied) => applied.into_reply().write(replies),
                            Err(error) => replies.error(&self.refusal(error)),
                        }
                        if !drain.drain_if_full(replies).await {
                            return Next::Close;
                        }
                    }
                }
                Ok(Command::Read(read)) => {
                    let mut run = vec![read];
                    while let Some(Ok(Command::Read(read))) =
                        requests.next_if(|next| matches!(next, Ok(Command::Read(_))))
                    {
                        run.push(read);
                    }
                    let due =
                        |data: &Data, now| run.iter().any(|read| read.finds_due_key(data, now));
                    match self.read_point(connection.stale_reads, due).await {
                        Ok(now) => {
                            // Evaluated in slices, the replies written out
                            // between them (without the store's lock): a
                            // later slice sees a store at least as new as
                            // the barrier, still linearizable.
                            let mut run = run.into_iter().peekable();
                            while run.peek().is_some() {
                                {
                                    let data = self.store.lock();
                                    let now = now.max(data.clock());
                                    while replies.len() < FLUSH_REPLIES_AT {
                                        let Some(read) = run.next() else {
                                            break;
                                        };
                                        read.evaluate(&data, now).write(replies);
                                    }
                                }
                                if !drain.drain_if_full(replies).await {
                                    return Next::Close;
                                }
                            }
                        }
                        Err(error) => {
                            let refusal = self.refusal(error);
                            run.iter().for_each(|_| replies.error(&refusal));
                        }
                    }
                }
                Ok(Command::Ping(None)) => replies.simple("PONG"),
                Ok(Command::Ping(Some(message)) | Command::Echo(message)) => replies.bulk(&message),
                Ok(Command::Info(section)) => {
                    replies.bulk(self.info(section.as_deref()).as_bytes())
                }
                Ok(Command::Role) => self.role(replies),
                Ok(Command::ConfigGet(pattern)) => {
                    let matching: Vec<&(&str, &str)> = CONFIG
                        .iter()
                        .filter(|(name, _)| glob::matches(&pattern, name.as_bytes()))
                        .collect();
                    replies.map(matching.len());
                    for (name, value) in matching {
                        replies.bulk(name.as_bytes());
                        replies.bulk(value.as_bytes());
                    }
                }
                Ok(Command::Cluster(query)) => self.cluster_view().answer(query, replies),
                Ok(Command::Multi) => {
                    connection.transaction = Some(Transaction::default());
                    replies.simple("OK");
                }
                Ok(Command::Exec) => replies.error("ERR EXEC without MULTI"),
                Ok(Command::Discard) => replies.error("ERR DISCARD without MULTI"),
                Ok(Command::Watch(keys)) => match self
                    .read_point(connection.stale_reads, |data: &Data, now| {
                        read::keys_due(data, &keys, now)
                    })
                    .await
                {
                    Ok(_) => {
                        let data = self.store.lock();
                        let versions = keys.into_iter().map(|key| {
                            let version = data.version(&key);
                            (key, version)
                        });
                        connection.watched.extend(versions);
                        replies.simple("OK");
                    }
                    Err(error) => replies.error(&self.refusal(error)),
                },
                Ok(Command::Unwatch) => {
                    connection.watched.clear();
                    replies.simple("OK");
                }
                Ok(Command::Session(command)) => {
                    if let Session::Hello {
                        auth: Some((user, password)),
                        ..
                    } = &command
                    {
                        if !self.authenticate(connection, Some(user), password, replies) {
                            continue;
                        }
                    }
                    let leads = self.handle.status().role == Role::Leader;
                    connection.answer(command, leads, replies);
                }
                Ok(Command::Auth { user, password }) => {
                    if self.authenticate(connection, user.as_deref(), &password, replies) {
                        replies.simple("OK");
                    }
                }
                Ok(Command::ReadOnly) => {
                    connection.stale_reads = true;
                    replies.simple("OK");
                }
                Ok(Command::ReadWrite) => {
                    connection.stale_reads = false;
                    replies.simple("OK");
                }
                Ok(Command::Quit) => {
                    replies.simple("OK");
                    return Next::Close;
                }
                Ok(Command::Admin(admin)) => match self.administer(admin).await {
                    Ok(()) => replies.simple("OK"),
                    Err(error) => replies.error(&error),
                },
                Ok(Command::Members) => {
                    let members = self.handle.status().members;
                    replies.array(members.len());
                    for member in members {
                        replies.bulk(describe_member(&member).as_bytes());
                    }
                }
            }
        }
        Next::Continue
    }

    /// Checks `AUTH [user] password` for `connection`, answering a
    /// refusal; whether it passed (the connection is then
    /// authenticated; a failure leaves it as it was, as in Redis).
    fn authenticate(
        &self,
        connection: &mut Connection,
        user: Option<&[u8]>,
        password: &[u8],
        replies: &mut Replies,
    ) -> bool {
        match self.auth.check(user, password) {
            Ok(()) => {
                connection.authenticated = true;
                true
            }
            Err(refusal) => {
                log_refusal(connection, "wrong user or password");
                replies.error(refusal.reply());
                false
            }
        }
    }

    /// Takes `request` while `connection` queues a transaction: the store's
    /// writes and reads are queued (`+QUEUED`), `EXEC` commits them as one
    /// log entry and answers each command's reply, `DISCARD` drops them.
    /// A request that cannot be queued (malformed, or a command other than
    /// the store's) is answered with its error and makes `EXEC` refuse the
    /// whole transaction, as Redis does.
    async fn in_transaction(
        &self,
        request: Result<Command, String>,
        connection: &mut Connection,
        replies: &mut Replies,
    ) -> Next {
        let Some(transaction) = connection.transaction.as_mut() else {
            return Next::Continue;
        };
        match request {
            Ok(Command::Write(write)) => {
                transaction.ops.push(Op::Write(write));
                replies.simple("QUEUED");
            }
            Ok(Command::Read(read)) => {
                transaction.ops.push(Op::Read(read));
                replies.simple("QUEUED");
            }
            Ok(Command::Multi) => replies.error("ERR MULTI calls can not be nested"),
            Ok(Command::Discard) => {
                connection.transaction = None;
                connection.watched.clear();
                replies.simple("OK");
            }
            // Refused, but the transaction goes on (as in Redis: WATCH is
            // never queued, so it does not spoil what is).
            Ok(Command::Watch(_)) => replies.error("ERR WATCH inside MULTI is not allowed"),
            Ok(Command::Quit) => {
                replies.simple("OK");
                return Next::Close;
            }
            Ok(Command::Exec) => {
                let Transaction { ops, aborted } =
                    connection.transaction.take().unwrap_or_default();
                let watched = std::mem::take(&mut connection.watched);
                if aborted {
                    replies.error("EXECABORT Transaction discarded because of previous errors.");
                } else if ops.is_empty() && watched.is_empty() {
                    replies.array(0);
                } else {
                    let proposal =
                        Entry::encode(&Write::Transaction { watched, ops }, wall_clock());
                    match self.handle.propose(proposal).await {
                        Ok(applied) => applied.into_reply().write(replies),
                        Err(error) => replies.error(&self.refusal(error)),
                    }
                }
            }
            Err(error) => {
                transaction.aborted = true;
                replies.error(&error);
            }
            Ok(_) => {
                transaction.aborted = true;
                replies.error(
                    "ERR only the store's reads and writes can be queued in a transaction here",
                );
            }
        }
        Next::Continue
    }

    /// Waits until a read may look at the store, and says what time it
    /// is then (milliseconds since the Unix epoch). A linearizable read
    /// waits for a read barrier; but if it would find a key whose time
    /// has come by this node's clock (`due` says) and that no entry has
    /// yet expired, it waits instead for a tick through the log (which
    /// expires it, and is a barrier too): a read never sees a key after
    /// its time on the leader's clock. A stale read (`READONLY`) waits for
    /// nothing.
    async fn read_point(
        &self,
        stale: bool,
        due: impl FnOnce(&Data, u64) -> bool,
    ) -> Result<u64, ProposeError> {
        let now = wall_clock();
        if stale {
            return Ok(now);
        }
        let due = due(&self.store.lock(), now);
        if due {
            self.handle.propose(expiry::tick(now)).await?;
        } else {
            self.handle.read_barrier().await?;
        }
        Ok(now)
    }

    /// Performs a change to the cluster; the error is the reply (without
    /// `-`).
    async fn administer(&self, admin: Admin) -> Result<(), String> {
        let changed =
            match admin {
                Admin::AddLearner { id, peer, client } => {
                    self.handle.add_learner(id, peer, client).await
                }
                Admin::Promote(id) => self.handle.promote(id).await,
                Admin::Remove(id) => self.handle.remove(id).await,
                Admin::TransferLeader(id) => {
                    return self.handle.transfer_leadership(id).await.map_err(
                        |error| match error {
                            TransferError::NotLeader { leader } => {
                                self.refusal(ProposeError::NotLeader { leader })
                            }
                            TransferError::InProgress { .. } | TransferError::Abandoned => {
                                format!("TRYAGAIN {error}")
                            }
                            _ => format!("ERR {error}"),
                        },
                    );
                }
            };
        changed.map(|_| ()).map_err(|error| match error {
            ChangeError::NotLeader { leader } => self.refusal(ProposeError::NotLeader { leader }),
            // What passes by itself: retrying is the answer.
            error if error.is_transient() => format!("TRYAGAIN {error}"),
            _ => format!("ERR {error}"),
        })
    }

    /// The cluster as Redis Cluster's commands describe it: the members
    /// whose client address is known.
    fn cluster_view(&self) -> ClusterView {
        let status = self.handle.status();
        let mut ids: Vec<NodeId> = status.members.iter().map(|member| member.id).collect();
        if !ids.contains(&status.id) {
            ids.push(status.id);
        }
        let nodes = ids
            .into_iter()
            .filter_map(|id| {
                let client = self.client_address(&status, id)?;
                let peer = status
                    .members
                    .iter()
                    .find(|member| member.id == id)
                    .and_then(|member| member.address);
                Some(ClusterNode { id, client, peer })
            })
            .collect();
        ClusterView {
            me: status.id,
            term: status.term.get(),
            leader: status.leader,
            nodes,
        }
    }

    /// Where node `id` serves clients: as the configuration records it,
    /// else as this node's settings give it.
    fn client_address(&self, status: &Status, id: NodeId) -> Option<SocketAddr> {
        status
            .members
            .iter()
            .find(|member| member.id == id)
            .and_then(|member| member.client_address)
            .or_else(|| self.client_addresses.get(&id).copied())
    }

    /// The reply (without `-`) for a write or read this node cannot do.
    fn refusal(&self, error: ProposeError) -> String {
        match error {
            ProposeError::NotLeader {
                leader: Some(leader),
            } => match self.client_address(&self.handle.status(), leader) {
                // Redis Cluster's redirect: cluster-aware clients follow it.
                Some(address) => format!("MOVED 0 {address}"),
                None => format!(
                    "TRYAGAIN node {leader} leads, but its client address was not given to this \
                     node (--peer {leader}=PEER_ADDR,CLIENT_ADDR)"
                ),
            },
            ProposeError::NotLeader { leader: None } => {
                "TRYAGAIN no leader is known yet; retry shortly".into()
            }
            ProposeError::Busy => "TRYAGAIN too many writes are waiting to commit".into(),
            ProposeError::Superseded => {
                "TRYAGAIN a new leader overwrote the write before it committed: it did not happen"
                    .into()
            }
            ProposeError::Stopped => "ERR the node is shutting down".into(),
            _ => format!("ERR {error}"),
        }
    }

    fn leader_address(&self, status: &Status) -> Option<SocketAddr> {
        status
            .leader
            .and_then(|leader| self.client_address(status, leader))
    }

    /// `INFO`: a `# Server` and a `# Raft` section (or the one asked for).
    fn info(&self, section: Option<&[u8]>) -> String {
        let section = section.map(|s| String::from_utf8_lossy(s).to_ascii_lowercase());
        let wanted = |name: &str| {
            matches!(
                section.as_deref(),
                None | Some("all" | "everything" | "default")
            ) || section.as_deref() == Some(name)
        };
        let mut text = String::new();
        if wanted("server") {
            text.push_str("# Server\r\n");
            text.push_str(&format!(
                "kontiki_version:{}\r\n",
                env!("CARGO_PKG_VERSION")
            ));
            text.push_str(&format!("process_id:{}\r\n", std::process::id()));
            text.push_str("\r\n");
        }
        if wanted("cluster") {
            // Cluster-aware clients look here before asking CLUSTER SLOTS.
            text.push_str("# Cluster\r\ncluster_enabled:1\r\n\r\n");
        }
        if wanted("raft") {
            let status = self.handle.status();
            let fields = raft_fields(&status, self.leader_address(&status));
            text.push_str("# Raft\r\n");
            for (name, value) in fields {
                text.push_str(&format!("{name}:{value}\r\n"));
            }
        }
        text
    }

    /// `ROLE`, in the spirit of Redis': the leader answers `master`, its
    /// commit index and the other nodes' client addresses; a follower or
    /// candidate answers `slave`, the leader's host and port, whether a
    /// leader is known, and its applied index.
    fn role(&self, replies: &mut Replies) {
        let status = self.handle.status();
        if status.role == Role::Leader {
            let others: Vec<SocketAddr> = status
                .members
                .iter()
                .filter(|member| member.id != status.id)
                .filter_map(|member| self.client_address(&status, member.id))
                .collect();
            replies.array(3);
            replies.bulk(b"master");
            replies.integer(status.commit_index.get() as i64);
            replies.array(others.len());
            for address in others {
                replies.array(2);
                replies.bulk(address.ip().to_string().as_bytes());
                replies.bulk(address.port().to_string().as_bytes());
            }
        } else {
            let leader = self.leader_address(&status);
            replies.array(5);
            replies.bulk(b"slave");
            match leader {
                Some(address) => {
                    replies.bulk(address.ip().to_string().as_bytes());
                    replies.integer(i64::from(address.port()));
                }
                None => {
                    replies.bulk(b"?");
                    replies.integer(-1);
                }
            }
            let state = if status.leader.is_some() {
                "connected"
            } else {
                "connect"
            };
            replies.bulk(state.as_bytes());
            replies.integer(status.applied_index.get() as i64);
        }
    }
}

/// The `# Raft` fields of `INFO`, in order; `kontiki status` reads them.
pub fn raft_fields(
    status: &Status,
    leader_address: Option<SocketAddr>,
) -> Vec<(&'static str, String)> {
    let role = match status.role {
        Role::Leader => "leader",
        Role::Candidate | Role::PreCandidate => "candidate",
        _ => "follower",
    };
    vec![
        ("node_id", status.id.get().to_string()),
        ("role", role.to_string()),
        ("term", status.term.get().to_string()),
        (
            "leader_id",
            status
                .leader
                .map_or(String::new(), |id| id.get().to_string()),
        ),
        (
            "leader_addr",
            leader_address.map_or(String::new(), |a| a.to_string()),
        ),
        ("commit_index", status.commit_index.get().to_string()),
        ("applied_index", status.applied_index.get().to_string()),
        ("last_log_index", status.last_log_index.get().to_string()),
        ("snapshot_index", status.snapshot_index.get().to_string()),
        (
            "membership_index",
            status.membership_index.get().to_string(),
        ),
        // 1 while the node recovers from a damaged log (it does not vote).
        ("recovering", u8::from(status.recovering).to_string()),
        // id=role pairs of the configuration in force, comma-separated.
        (
            "members",
            status
                .members
                .iter()
                .map(|member| format!("{}={}", member.id, role_name(member.role)))
                .collect::<Vec<_>>()
                .join(","),
        ),
        // Milliseconds since a follower last heard from its leader.
        (
            "leader_contact_ms_ago",
            status
                .last_leader_contact
                .map_or(String::new(), |at| at.elapsed().as_millis().to_string()),
        ),
    ]
}

/// A member as `RAFT.NODE LIST` shows it: space-separated `key=value`
/// pairs (an address or match index the node does not know is left out).
pub fn describe_member(member: &Member) -> String {
    let mut text = format!("id={} role={}", member.id, role_name(member.role));
    if let Some(address) = member.address {
        text.push_str(&format!(" peer={address}"));
    }
    if let Some(address) = member.client_address {
        text.push_str(&format!(" client={address}"));
    }
    if let Some(index) = member.match_index {
        text.push_str(&format!(" match={index}"));
    }
    text
}

fn role_name(role: MemberRole) -> &'static str {
    match role {
        MemberRole::Voter => "voter",
        MemberRole::Learner => "learner",
        MemberRole::Leaving => "leaving",
    }
}

//! Networking between nodes: JSON over HTTP/1.1 with hyper, one kept-alive connection per
//! peer and replication stream.
//!
//! Raft RPCs: `POST /raft/append`, `/raft/vote`, `/raft/snapshot`. The application API the
//! demo uses: `POST /api/write` (a [`Request`]), `GET /api/read/<key>` (this node's applied
//! value), `POST /api/init` (the initial members), `/api/add-learner`,
//! `/api/change-membership`, `GET /api/metrics`, `GET /api/pid`. Every answer is JSON; a
//! Raft RPC answers `Result<response, RaftError>` so the caller gets openraft's own error.

use crate::{KvConfig, NodeId, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};

/// An HTTP/1.1 connection to one node, kept alive between requests and opened again
/// after a failure.
#[derive(Debug)]
pub struct HttpClient {
    addr: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// Why an HTTP call failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No connection could be made: the node is down or the address is wrong.
    #[error("cannot connect to {addr}: {source}")]
    Unreachable {
        /// The address.
        addr: String,
        /// What the connect said.
        source: std::io::Error,
    },
    /// The connection broke or the answer was not what was expected.
    #[error("HTTP call to {addr}{path} failed: {reason}")]
    Failed {
        /// The address.
        addr: String,
        /// The path called.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl HttpClient {
    /// A client for the node at `addr` (`host:port`); connects on first use.
    #[must_use]
    pub fn new(addr: impl Into<String>) -> Self {
        HttpClient {
            addr: addr.into(),
            sender: None,
        }
    }

    /// The node's address.
    #[must_use]
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `POST path` with `body` as JSON; the answer decoded from JSON.
    ///
    /// # Errors
    /// [`HttpError`].
    pub async fn post<B: Serialize, R: DeserializeOwned>(
        &mut self,
        path: &str,
        body: &B,
    ) -> Result<R, HttpError> {
        let body = serde_json::to_vec(body).map_err(|e| self.failed(path, e))?;
        self.call(Method::POST, path, body).await
    }

    /// `GET path`; the answer decoded from JSON.
    ///
    /// # Errors
    /// [`HttpError`].
    pub async fn get<R: DeserializeOwned>(&mut self, path: &str) -> Result<R, HttpError> {
        self.call(Method::GET, path, Vec::new()).await
    }

    fn failed(&self, path: &str, reason: impl ToString) -> HttpError {
        HttpError::Failed {
            addr: self.addr.clone(),
            path: path.to_owned(),
            reason: reason.to_string(),
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, HttpError> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = None;
            let stream =
                TcpStream::connect(&self.addr)
                    .await
                    .map_err(|source| HttpError::Unreachable {
                        addr: self.addr.clone(),
                        source,
                    })?;
            let _ = stream.set_nodelay(true);
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| self.failed("", e))?;
            // The connection runs until either side hangs up.
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or_else(|| HttpError::Failed {
            addr: String::new(),
            path: String::new(),
            reason: "no connection".into(),
        })
    }

    async fn call<R: DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<R, HttpError> {
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.addr.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| self.failed(path, e))?;
        let sender = self.sender().await?;
        let sent = sender.send_request(request).await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                self.sender = None;
                return Err(self.failed(path, e));
            }
        };
        let status = response.status();
        let bytes = match response.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                self.sender = None;
                return Err(self.failed(path, e));
            }
        };
        if status != StatusCode::OK {
            return Err(self.failed(
                path,
                format!("{status}: {}", String::from_utf8_lossy(&bytes)),
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| self.failed(path, e))
    }
}

/// openraft's network factory: one [`PeerClient`] per target and replication stream.
#[derive(Debug, Clone, Default)]
pub struct Network;

/// openraft's network client to one peer, over one [`HttpClient`].
#[derive(Debug)]
pub struct PeerClient {
    target: NodeId,
    client: HttpClient,
}

impl RaftNetworkFactory<KvConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        PeerClient {
            target,
            client: HttpClient::new(node.addr.clone()),
        }
    }
}

impl PeerClient {
    async fn rpc<Q: Serialize, P: DeserializeOwned, E: std::error::Error + DeserializeOwned>(
        &mut self,
        path: &str,
        request: &Q,
    ) -> Result<P, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
        let answer: Result<P, RaftError<NodeId, E>> =
            self.client.post(path, request).await.map_err(|e| match e {
                HttpError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                HttpError::Failed { .. } => RPCError::Network(NetworkError::new(&e)),
            })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<KvConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<KvConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc("/raft/append", &rpc).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<KvConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.rpc("/raft/snapshot", &rpc).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc("/raft/vote", &rpc).await
    }
}

/// A learner to add (`POST /api/add-learner`).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AddLearner {
    /// Its node id.
    pub id: NodeId,
    /// Its address, `host:port`.
    pub addr: String,
}

/// What the HTTP server needs of its node.
#[derive(Clone)]
pub(crate) struct Served {
    pub(crate) raft: Raft<KvConfig>,
    pub(crate) sm: crate::KvStateMachine,
}

/// Serves Raft RPCs and the application API on `listener` until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, served: Served) {
    // Aborting this task drops the set, which aborts every connection with it: a stopped
    // node answers nothing more.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let served = served.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let served = served.clone();
                async move { Ok::<_, Infallible>(route(served, request).await) }
            });
            // A peer that hangs up ends its connection; nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn json<T: Serialize>(value: &T) -> hyper::Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(bytes) => hyper::Response::new(Full::new(Bytes::from(bytes))),
        Err(e) => status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn status(code: StatusCode, message: String) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(message)));
    *response.status_mut() = code;
    response
}

async fn body<T: DeserializeOwned>(request: hyper::Request<Incoming>) -> Result<T, String> {
    let bytes = request
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| format!("bad request body: {e}"))
}

async fn route(served: Served, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let raft = &served.raft;
    let method = request.method().clone();
    let result = match (method, path.as_str()) {
        (Method::POST, "/raft/append") => match body(request).await {
            Ok(rpc) => Ok(json(&raft.append_entries(rpc).await)),
            Err(e) => Err(e),
        },
        (Method::POST, "/raft/vote") => match body(request).await {
            Ok(rpc) => Ok(json(&raft.vote(rpc).await)),
            Err(e) => Err(e),
        },
        (Method::POST, "/raft/snapshot") => match body(request).await {
            Ok(rpc) => Ok(json(&raft.install_snapshot(rpc).await)),
            Err(e) => Err(e),
        },
        (Method::POST, "/api/write") => match body::<Request>(request).await {
            Ok(write) => Ok(json(&raft.client_write(write).await)),
            Err(e) => Err(e),
        },
        (Method::POST, "/api/init") => match body::<BTreeMap<NodeId, String>>(request).await {
            Ok(members) => {
                let nodes: BTreeMap<NodeId, BasicNode> = members
                    .into_iter()
                    .map(|(id, addr)| (id, BasicNode { addr }))
                    .collect();
                Ok(json(&raft.initialize(nodes).await))
            }
            Err(e) => Err(e),
        },
        (Method::POST, "/api/add-learner") => match body::<AddLearner>(request).await {
            Ok(add) => Ok(json(
                &raft
                    .add_learner(add.id, BasicNode { addr: add.addr }, true)
                    .await,
            )),
            Err(e) => Err(e),
        },
        (Method::POST, "/api/change-membership") => match body::<BTreeSet<NodeId>>(request).await {
            Ok(members) => Ok(json(&raft.change_membership(members, false).await)),
            Err(e) => Err(e),
        },
        (Method::GET, "/api/metrics") => Ok(json(&*raft.metrics().borrow())),
        (Method::GET, "/api/pid") => Ok(json(&std::process::id())),
        (Method::GET, key) if key.starts_with("/api/read/") => {
            Ok(json(&served.sm.get(&key["/api/read/".len()..])))
        }
        _ => return status(StatusCode::NOT_FOUND, format!("no route {path}")),
    };
    result.unwrap_or_else(|e| status(StatusCode::BAD_REQUEST, e))
}

/// Serves Raft RPCs and the application API of `raft` and `sm` on `listener` until the
/// task is aborted: what [`RaftNode`](crate::RaftNode) runs, public for a node built
/// around another log store (the benchmark's in-memory one, `benches/cluster.rs`).
pub async fn serve_node(listener: TcpListener, raft: Raft<KvConfig>, sm: crate::KvStateMachine) {
    serve(listener, Served { raft, sm }).await;
}

/// Binds the HTTP listener of a node.
///
/// # Errors
/// The bind's I/O error.
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

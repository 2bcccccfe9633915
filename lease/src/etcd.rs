//! A [`LeaseBackend`] on etcd, for leases shared between machines (feature `etcd`).
//!
//! It speaks etcd's v3 JSON gateway (`POST /v3/kv/range`, `POST /v3/kv/txn`) with a small
//! blocking client, so it needs no async runtime: over plain HTTP, or over HTTPS (rustls)
//! trusting a given CA ([`EtcdBackend::with_ca_pem`]) and presenting a client certificate
//! for mutual TLS ([`EtcdBackend::with_client_cert_pem`]); with etcd's user/password
//! authentication ([`EtcdBackend::with_user`]) it gets a token from
//! `/v3/auth/authenticate` and sends it with every request, authenticating again once
//! when etcd says the token is no longer valid. Keys and values travel
//! base64-encoded, 64-bit numbers as decimal strings, as the gateway's JSON mapping does.
//!
//! Compare-and-swap is one etcd transaction per write:
//!
//! | operation | compare | then |
//! |---|---|---|
//! | `put_if_absent` | `create_revision(key) == 0` (the key does not exist) | put |
//! | `put_if_version(v)` | `mod_revision(key) == v` | put |
//! | `delete_if_version(v)` | `mod_revision(key) == v` | delete |
//!
//! The [`Version`] of a value is its `mod_revision`: etcd's store revision is global and
//! only grows, so versions never repeat, even across deletes. A transaction that etcd
//! acknowledged is committed by its raft quorum.
//!
//! Expiry stays in the lease record (wall-clock ms) rather than in an etcd lease, so all
//! backends follow one set of rules; see `docs/lease.md`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use super::backend::{check_value_len, CasOutcome, LeaseBackend, Version, Versioned};
use super::error::BackendError;

/// Key prefix used unless [`EtcdBackend::with_prefix`] sets another.
pub const DEFAULT_PREFIX: &str = "tidelog/leases/";

/// Longest answer read from etcd; a range of one key is far smaller.
const RESPONSE_LEN_MAX: u64 = 1024 * 1024;

/// Lease records as etcd keys. See the module docs.
#[derive(Debug, Clone)]
pub struct EtcdBackend {
    agent: ureq::Agent,
    endpoint: String,
    prefix: String,
    timeout: Duration,
    tls: TlsFiles,
    credentials: Option<(String, String)>,
    /// The current auth token, shared by clones.
    token: Arc<Mutex<Option<String>>>,
}

/// The PEM inputs of the TLS configuration, kept to rebuild it when one changes.
#[derive(Clone, Default)]
struct TlsFiles {
    ca: Option<Vec<u8>>,
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a private key.
        f.debug_struct("TlsFiles")
            .field("ca", &self.ca.is_some())
            .field("client_cert", &self.client.is_some())
            .finish()
    }
}

impl EtcdBackend {
    /// A client of the etcd member at `endpoint` (`http://host:port`, or
    /// `https://host:port`: TLS, trusting the public web roots unless
    /// [`EtcdBackend::with_ca_pem`] names the CA), with a 5 s timeout per request and keys
    /// under [`DEFAULT_PREFIX`]. Nothing is contacted yet.
    ///
    /// # Errors
    /// [`BackendError::InvalidConfig`] for an endpoint of another shape.
    pub fn new(endpoint: &str) -> Result<Self, BackendError> {
        let endpoint = endpoint.trim_end_matches('/');
        let Some(authority) = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
        else {
            return Err(BackendError::InvalidConfig {
                reason: format!("etcd endpoint '{endpoint}' must start with http:// or https://"),
            });
        };
        if authority.is_empty() || authority.contains('/') {
            return Err(BackendError::InvalidConfig {
                reason: format!(
                    "etcd endpoint '{endpoint}' must be http://host:port or https://host:port"
                ),
            });
        }
        let timeout = Duration::from_secs(5);
        let tls = TlsFiles::default();
        Ok(EtcdBackend {
            agent: agent(timeout, &tls)?,
            endpoint: endpoint.to_owned(),
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout,
            tls,
            credentials: None,
            token: Arc::default(),
        })
    }

    /// The same backend trusting only the CA certificate(s) in `pem` for `https`
    /// endpoints (etcd's `--trusted-ca-file` side of the server certificate).
    ///
    /// # Errors
    /// [`BackendError::InvalidConfig`] if `pem` holds no certificate.
    pub fn with_ca_pem(mut self, pem: &[u8]) -> Result<Self, BackendError> {
        self.tls.ca = Some(pem.to_vec());
        self.agent = agent(self.timeout, &self.tls)?;
        Ok(self)
    }

    /// The same backend presenting the client certificate chain `cert_pem` with its
    /// private key `key_pem` (mutual TLS: etcd's `--client-cert-auth`).
    ///
    /// # Errors
    /// [`BackendError::InvalidConfig`] if the PEM holds no certificate or no usable key.
    pub fn with_client_cert_pem(
        mut self,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, BackendError> {
        self.tls.client = Some((cert_pem.to_vec(), key_pem.to_vec()));
        self.agent = agent(self.timeout, &self.tls)?;
        Ok(self)
    }

    /// The same backend authenticating as `user` with `password` (etcd's
    /// `auth enable`). The token is fetched on first use and again when etcd says it is
    /// no longer valid; a refused password is [`BackendError::Unauthorized`].
    #[must_use]
    pub fn with_user(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self.token = Arc::default();
        self
    }

    /// The same backend with keys stored under `prefix` (`prefix` + lease key).
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        self
    }

    /// The same backend with `timeout` for each request (connect, send and answer).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        // The TLS inputs were accepted when they were set, so this rebuild succeeds.
        if let Ok(agent) = agent(timeout, &self.tls) {
            self.agent = agent;
        }
        self
    }

    /// The etcd key holding `key`, base64-encoded for the gateway.
    fn etcd_key(&self, key: &str) -> String {
        BASE64.encode(format!("{}{key}", self.prefix))
    }

    /// Posts `body` to the gateway at `path` and returns the JSON answer, with the auth
    /// token when a user is configured (authenticating first, and once more if etcd says
    /// the token is no longer valid).
    fn call(&self, path: &str, body: &Value) -> Result<Value, BackendError> {
        let Some((user, _)) = &self.credentials else {
            return self.post(path, body, None).map_err(Failure::into_error);
        };
        let mut fresh = false;
        loop {
            let token = match self.cached_token() {
                Some(token) => token,
                None => {
                    fresh = true;
                    self.authenticate()?
                }
            };
            match self.post(path, body, Some(&token)) {
                Err(Failure::Status { detail, .. })
                    if detail.contains("auth token") || detail.contains("user name is empty") =>
                {
                    if fresh {
                        return Err(BackendError::Unauthorized {
                            endpoint: self.endpoint.clone(),
                            user: user.clone(),
                            detail,
                        });
                    }
                    // Expired or revoked: forget it and authenticate once more.
                    self.set_token(None);
                }
                other => return other.map_err(Failure::into_error),
            }
        }
    }

    fn cached_token(&self) -> Option<String> {
        self.token
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_token(&self, token: Option<String>) {
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = token;
    }

    /// Gets a token for the configured user.
    fn authenticate(&self) -> Result<String, BackendError> {
        let Some((user, password)) = &self.credentials else {
            return Err(self.protocol("no user configured".to_owned()));
        };
        let body = json!({ "name": user, "password": password });
        let answer = match self.post("/v3/auth/authenticate", &body, None) {
            Ok(answer) => answer,
            Err(Failure::Status { detail, .. }) => {
                return Err(BackendError::Unauthorized {
                    endpoint: self.endpoint.clone(),
                    user: user.clone(),
                    detail,
                })
            }
            Err(other) => return Err(other.into_error()),
        };
        let token = answer
            .get("token")
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                self.protocol("/v3/auth/authenticate answered without a token".to_owned())
            })?
            .to_owned();
        self.set_token(Some(token.clone()));
        Ok(token)
    }

    /// One POST, its failure kept apart by kind so `call` can react to refusals.
    fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.endpoint);
        let mut request = self
            .agent
            .post(&url)
            .set("Content-Type", "application/json");
        if let Some(token) = token {
            request = request.set("Authorization", token);
        }
        let text = match request.send_string(&body.to_string()) {
            Ok(response) => {
                read_body(response).map_err(|source| Failure::Other(self.transport(source)))?
            }
            Err(ureq::Error::Status(status, response)) => {
                let body = read_body(response).unwrap_or_default();
                return Err(Failure::Status {
                    detail: excerpt(&body).to_owned(),
                    error: self.protocol(format!("HTTP {status} from {path}: {}", excerpt(&body))),
                });
            }
            Err(ureq::Error::Transport(transport)) => {
                return Err(Failure::Other(self.transport(transport)))
            }
        };
        serde_json::from_str(&text).map_err(|err| {
            Failure::Other(self.protocol(format!("{path} answered with invalid JSON: {err}")))
        })
    }

    /// Runs a transaction: if `compare` holds, `success`. Returns the new store revision
    /// when it held.
    fn txn(&self, compare: Value, success: Value) -> Result<CasOutcome<u64>, BackendError> {
        let answer = self.call(
            "/v3/kv/txn",
            &json!({ "compare": [compare], "success": [success] }),
        )?;
        // The gateway leaves out fields at their default, so a missing `succeeded` is false.
        let succeeded = match answer.get("succeeded") {
            None => false,
            Some(Value::Bool(flag)) => *flag,
            Some(other) => {
                return Err(self.protocol(format!("txn 'succeeded' is not a boolean: {other}")))
            }
        };
        if !succeeded {
            return Ok(CasOutcome::Conflict);
        }
        let revision = answer
            .get("header")
            .and_then(|header| header.get("revision"))
            .and_then(int64)
            .ok_or_else(|| self.protocol("txn answer has no header.revision".to_owned()))?;
        Ok(CasOutcome::Applied(revision))
    }

    fn put_if(
        &self,
        key: &str,
        value: &[u8],
        compare: Value,
    ) -> Result<CasOutcome<Version>, BackendError> {
        check_value_len(value)?;
        let put =
            json!({ "request_put": { "key": self.etcd_key(key), "value": BASE64.encode(value) } });
        Ok(match self.txn(compare, put)? {
            CasOutcome::Applied(revision) => CasOutcome::Applied(Version::new(revision)),
            CasOutcome::Conflict => CasOutcome::Conflict,
        })
    }

    fn transport(&self, source: impl std::error::Error + Send + Sync + 'static) -> BackendError {
        if let Some(tls) = tls_failure(&source) {
            return BackendError::Tls {
                endpoint: self.endpoint.clone(),
                detail: tls,
            };
        }
        BackendError::Transport {
            endpoint: self.endpoint.clone(),
            source: Box::new(source),
        }
    }

    fn protocol(&self, detail: String) -> BackendError {
        BackendError::Protocol {
            endpoint: self.endpoint.clone(),
            detail,
        }
    }
}

impl LeaseBackend for EtcdBackend {
    fn read(&self, key: &str) -> Result<Option<Versioned>, BackendError> {
        let answer = self.call("/v3/kv/range", &json!({ "key": self.etcd_key(key) }))?;
        let Some(kv) = answer
            .get("kvs")
            .and_then(Value::as_array)
            .and_then(|kvs| kvs.first())
        else {
            return Ok(None);
        };
        let version = kv
            .get("mod_revision")
            .and_then(int64)
            .filter(|revision| *revision > 0)
            .ok_or_else(|| self.protocol("range answer has no mod_revision".to_owned()))?;
        // An empty value is left out by the gateway.
        let encoded = kv.get("value").and_then(Value::as_str).unwrap_or_default();
        let value = BASE64
            .decode(encoded)
            .map_err(|err| self.protocol(format!("range value is not base64: {err}")))?;
        Ok(Some(Versioned {
            value,
            version: Version::new(version),
        }))
    }

    fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<CasOutcome<Version>, BackendError> {
        let absent = json!({
            "key": self.etcd_key(key),
            "target": "CREATE",
            "result": "EQUAL",
            "create_revision": "0",
        });
        self.put_if(key, value, absent)
    }

    fn put_if_version(
        &self,
        key: &str,
        value: &[u8],
        expected: Version,
    ) -> Result<CasOutcome<Version>, BackendError> {
        let unchanged = json!({
            "key": self.etcd_key(key),
            "target": "MOD",
            "result": "EQUAL",
            "mod_revision": expected.get().to_string(),
        });
        self.put_if(key, value, unchanged)
    }

    fn delete_if_version(
        &self,
        key: &str,
        expected: Version,
    ) -> Result<CasOutcome<()>, BackendError> {
        let unchanged = json!({
            "key": self.etcd_key(key),
            "target": "MOD",
            "result": "EQUAL",
            "mod_revision": expected.get().to_string(),
        });
        let delete = json!({ "request_delete_range": { "key": self.etcd_key(key) } });
        Ok(match self.txn(unchanged, delete)? {
            CasOutcome::Applied(_) => CasOutcome::Applied(()),
            CasOutcome::Conflict => CasOutcome::Conflict,
        })
    }
}

/// A failed POST: a status etcd answered (kept apart for the auth logic) or anything else.
enum Failure {
    Status { detail: String, error: BackendError },
    Other(BackendError),
}

impl Failure {
    fn into_error(self) -> BackendError {
        match self {
            Failure::Status { error, .. } | Failure::Other(error) => error,
        }
    }
}

/// What rustls said, if `error` (or one of its sources) is a TLS failure.
fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(tls) = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls.to_string());
        }
        next = error.source();
    }
    None
}

fn agent(timeout: Duration, tls: &TlsFiles) -> Result<ureq::Agent, BackendError> {
    let builder = ureq::AgentBuilder::new().timeout(timeout);
    if tls.ca.is_none() && tls.client.is_none() {
        return Ok(builder.build());
    }
    Ok(builder.tls_config(Arc::new(tls_config(tls)?)).build())
}

fn tls_config(tls: &TlsFiles) -> Result<rustls::ClientConfig, BackendError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |reason: String| BackendError::InvalidConfig { reason };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| invalid(format!("TLS setup failed: {err}")))?;
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca {
        Some(pem) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|err| invalid(format!("the etcd CA certificate PEM is invalid: {err}")))?;
            if certs.is_empty() {
                return Err(invalid("the etcd CA PEM holds no certificate".to_owned()));
            }
            for cert in certs {
                roots.add(cert).map_err(|err| {
                    invalid(format!("the etcd CA certificate is unusable: {err}"))
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = builder.with_root_certificates(roots);
    match &tls.client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert_pem, key_pem)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
                .collect::<Result<_, _>>()
                .map_err(|err| invalid(format!("the client certificate PEM is invalid: {err}")))?;
            if chain.is_empty() {
                return Err(invalid(
                    "the client certificate PEM holds no certificate".to_owned(),
                ));
            }
            let key = PrivateKeyDer::from_pem_slice(key_pem)
                .map_err(|err| invalid(format!("the client key PEM is invalid: {err}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|err| invalid(format!("the client certificate and key do not fit: {err}")))
        }
    }
}

fn read_body(response: ureq::Response) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    response
        .into_reader()
        .take(RESPONSE_LEN_MAX)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// An int64 of the gateway's JSON: a decimal string, or a plain number.
fn int64(value: &Value) -> Option<u64> {
    match value {
        Value::String(text) => text.parse().ok(),
        other => other.as_u64(),
    }
}

/// The start of an error body, for messages.
fn excerpt(body: &str) -> &str {
    let end = body
        .char_indices()
        .nth(200)
        .map_or(body.len(), |(index, _)| index);
    body.get(..end).unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_endpoints_are_accepted() {
        assert!(EtcdBackend::new("http://127.0.0.1:2379").is_ok());
        assert!(EtcdBackend::new("http://127.0.0.1:2379/").is_ok());
        assert!(EtcdBackend::new("https://127.0.0.1:2379").is_ok());
        assert!(EtcdBackend::new("https://").is_err());
        assert!(EtcdBackend::new("ftp://127.0.0.1:2379").is_err());
        assert!(EtcdBackend::new("127.0.0.1:2379").is_err());
        assert!(EtcdBackend::new("http://").is_err());
        assert!(EtcdBackend::new("http://host:1/path").is_err());
    }

    #[test]
    fn gateway_int64s_read_as_strings_or_numbers() {
        assert_eq!(int64(&json!("42")), Some(42));
        assert_eq!(int64(&json!(42)), Some(42));
        assert_eq!(int64(&json!("-1")), None);
        assert_eq!(int64(&json!(null)), None);
    }

    #[test]
    fn keys_carry_the_prefix() {
        let backend = EtcdBackend::new("http://127.0.0.1:1")
            .unwrap()
            .with_prefix("p/");
        assert_eq!(BASE64.decode(backend.etcd_key("main")).unwrap(), b"p/main");
    }
}

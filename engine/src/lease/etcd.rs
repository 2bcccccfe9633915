//! A [`LeaseBackend`] on etcd, for leases shared between machines (feature `etcd`).
//!
//! It speaks etcd's v3 JSON gateway (`POST /v3/kv/range`, `POST /v3/kv/txn`) over plain
//! HTTP with a small blocking client, so it needs no async runtime. Keys and values travel
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
}

impl EtcdBackend {
    /// A client of the etcd member at `endpoint` (`http://host:port`), with a 5 s timeout
    /// per request and keys under [`DEFAULT_PREFIX`]. Nothing is contacted yet.
    pub fn new(endpoint: &str) -> Result<Self, BackendError> {
        let endpoint = endpoint.trim_end_matches('/');
        let Some(authority) = endpoint.strip_prefix("http://") else {
            return Err(BackendError::InvalidConfig {
                reason: format!(
                    "etcd endpoint '{endpoint}' must start with http:// (TLS is not supported)"
                ),
            });
        };
        if authority.is_empty() || authority.contains('/') {
            return Err(BackendError::InvalidConfig {
                reason: format!("etcd endpoint '{endpoint}' must be http://host:port"),
            });
        }
        Ok(EtcdBackend {
            agent: agent(Duration::from_secs(5)),
            endpoint: endpoint.to_owned(),
            prefix: DEFAULT_PREFIX.to_owned(),
        })
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
        self.agent = agent(timeout);
        self
    }

    /// The etcd key holding `key`, base64-encoded for the gateway.
    fn etcd_key(&self, key: &str) -> String {
        BASE64.encode(format!("{}{key}", self.prefix))
    }

    /// Posts `body` to the gateway at `path` and returns the JSON answer.
    fn call(&self, path: &str, body: &Value) -> Result<Value, BackendError> {
        let url = format!("{}{path}", self.endpoint);
        let response = self
            .agent
            .post(&url)
            .set("Content-Type", "application/json")
            .send_string(&body.to_string());
        let text = match response {
            Ok(response) => read_body(response).map_err(|source| self.transport(source))?,
            Err(ureq::Error::Status(status, response)) => {
                let body = read_body(response).unwrap_or_default();
                return Err(self.protocol(format!("HTTP {status} from {path}: {}", excerpt(&body))));
            }
            Err(ureq::Error::Transport(transport)) => return Err(self.transport(transport)),
        };
        serde_json::from_str(&text)
            .map_err(|err| self.protocol(format!("{path} answered with invalid JSON: {err}")))
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

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(timeout).build()
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
    fn only_plain_http_endpoints_are_accepted() {
        assert!(EtcdBackend::new("http://127.0.0.1:2379").is_ok());
        assert!(EtcdBackend::new("http://127.0.0.1:2379/").is_ok());
        assert!(EtcdBackend::new("https://127.0.0.1:2379").is_err());
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

//! A real etcd on loopback ports of its own, in a temp dir, killed when dropped: the
//! store of the etcd lease backend's tests (feature `etcd`).

use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long etcd may take to become healthy.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
/// Pause between health probes while it starts.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

pub struct EtcdServer {
    child: Child,
    client_port: u16,
    dir: tempfile::TempDir,
    /// With TLS: the certificates and the agent that speaks to it as an administrator.
    secure: Option<(Pki, ureq::Agent)>,
}

/// The user the secure server's tests authenticate as, and its password.
pub const USER: &str = "root";
pub const PASSWORD: &str = "correct horse battery staple";

/// Certificates made for one test run: a CA, etcd's server certificate (for 127.0.0.1
/// and localhost) and a client certificate signed by it, and a second CA nobody trusts
/// with a server certificate of its own.
#[derive(Clone)]
pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
    pub rogue_ca_pem: String,
}

impl Pki {
    pub fn generate() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        };
        let ca = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            let key = KeyPair::generate().expect("CA key");
            let cert = params.self_signed(&key).expect("CA certificate");
            (cert, key)
        };
        let leaf = |names: Vec<String>,
                    cn: Option<&str>,
                    usage: Vec<ExtendedKeyUsagePurpose>,
                    issuer: &(rcgen::Certificate, KeyPair)| {
            let mut params = CertificateParams::new(names).expect("leaf params");
            params.distinguished_name = rcgen::DistinguishedName::new();
            if let Some(cn) = cn {
                params.distinguished_name.push(DnType::CommonName, cn);
            }
            params.extended_key_usages = usage;
            let key = KeyPair::generate().expect("leaf key");
            let cert = params
                .signed_by(&key, &issuer.0, &issuer.1)
                .expect("leaf certificate");
            (cert.pem(), key.serialize_pem())
        };
        let authority = ca("tidelog test CA");
        let rogue = ca("an untrusted CA");
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let (server_cert_pem, server_key_pem) = leaf(
            names,
            Some("etcd"),
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            &authority,
        );
        // No common name: etcd refuses gateway requests whose client certificate has one
        // (it would not be used as the user), so requests are authorized by the
        // password's token alone.
        let (client_cert_pem, client_key_pem) = leaf(
            vec!["tidelog-client".to_owned()],
            None,
            vec![ExtendedKeyUsagePurpose::ClientAuth],
            &authority,
        );
        Pki {
            ca_pem: authority.0.pem(),
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
            rogue_ca_pem: rogue.0.pem(),
        }
    }
}

/// A ureq agent trusting `ca_pem` and presenting the client certificate.
fn tls_agent(pki: &Pki) -> ureq::Agent {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.client_cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("client PEM");
    let key = PrivateKeyDer::from_pem_slice(pki.client_key_pem.as_bytes()).expect("client key");
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .expect("client certificate");
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .tls_config(std::sync::Arc::new(config))
        .build()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// The etcd binary: `$TIDELOG_ETCD_BIN`, else `etcd` on `$PATH`. Missing, the test
/// fails: a skipped etcd suite would look like a passing one.
fn etcd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TIDELOG_ETCD_BIN") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("etcd"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the etcd lease tests need an etcd binary, and none was found: install \
             it (Debian: apt-get install -y etcd-server, which puts it at \
             /usr/bin/etcd) or set TIDELOG_ETCD_BIN to its path"
        )
    })
}

impl EtcdServer {
    /// Starts etcd; if it exits at once (another process took one of the ports it
    /// was given between our probe and its bind), tries again on new ports, a
    /// bounded number of times.
    pub fn start() -> EtcdServer {
        EtcdServer::start_with(None)
    }

    /// Starts etcd with TLS on its client port (certificates from `Pki::generate`),
    /// client certificates required (mutual TLS), and authentication on: user
    /// [`USER`] with [`PASSWORD`].
    pub fn start_secure() -> EtcdServer {
        let server = EtcdServer::start_with(Some(Pki::generate()));
        server.enable_auth();
        server
    }

    fn start_with(pki: Option<Pki>) -> EtcdServer {
        const ATTEMPTS: usize = 3;
        let binary = etcd_binary();
        let mut last_log = String::new();
        for _ in 0..ATTEMPTS {
            match EtcdServer::start_once(&binary, pki.clone()) {
                Ok(server) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("etcd exited before becoming healthy {ATTEMPTS} times; last log:\n{last_log}");
    }

    fn start_once(binary: &Path, pki: Option<Pki>) -> Result<EtcdServer, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let client_port = free_port();
        let peer_port = free_port();
        let scheme = if pki.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = File::create(dir.path().join("etcd.log")).expect("log file");
        let mut command = Command::new(binary);
        if let Some(pki) = &pki {
            let write = |name: &str, pem: &str| {
                let path = dir.path().join(name);
                std::fs::write(&path, pem).expect("write a certificate");
                path.display().to_string()
            };
            command
                .arg(format!(
                    "--cert-file={}",
                    write("server.pem", &pki.server_cert_pem)
                ))
                .arg(format!(
                    "--key-file={}",
                    write("server-key.pem", &pki.server_key_pem)
                ))
                .arg(format!(
                    "--trusted-ca-file={}",
                    write("ca.pem", &pki.ca_pem)
                ))
                .arg("--client-cert-auth");
        }
        let child = command
            .arg("--name=tidelog-test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=tidelog-test={peer}"))
            .arg("--initial-cluster-state=new")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
        let secure = pki.map(|pki| {
            let agent = tls_agent(&pki);
            (pki, agent)
        });
        let mut server = EtcdServer {
            child,
            client_port,
            dir,
            secure,
        };
        server.wait_healthy()?;
        Ok(server)
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.secure.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// The certificates of a server started with [`EtcdServer::start_secure`].
    pub fn pki(&self) -> &Pki {
        &self.secure.as_ref().expect("a secure server").0
    }

    /// Adds the root role and user and turns authentication on, through the gateway.
    fn enable_auth(&self) {
        let (_, agent) = self.secure.as_ref().expect("a secure server");
        for (path, body) in [
            ("/v3/auth/role/add", serde_json::json!({ "name": "root" })),
            (
                "/v3/auth/user/add",
                serde_json::json!({ "name": USER, "password": PASSWORD }),
            ),
            (
                "/v3/auth/user/grant",
                serde_json::json!({ "user": USER, "role": "root" }),
            ),
            ("/v3/auth/enable", serde_json::json!({})),
        ] {
            let url = format!("{}{path}", self.endpoint());
            if let Err(err) = agent.post(&url).send_string(&body.to_string()) {
                panic!(
                    "etcd refused {path}: {err}; its log:\n{}",
                    read_log(self.dir.path())
                );
            }
        }
    }

    /// Polls `/health` until etcd answers healthy; `Err(log)` if it exited first.
    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_DEADLINE;
        let agent = match &self.secure {
            Some((_, agent)) => agent.clone(),
            None => ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(1))
                .build(),
        };
        let url = format!("{}/health", self.endpoint());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exit {status}\n{}", read_log(self.dir.path())));
            }
            let healthy = agent
                .get(&url)
                .call()
                .ok()
                .and_then(|response| response.into_string().ok())
                .is_some_and(|body| body.contains("\"health\":\"true\""));
            if healthy {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not become healthy within {STARTUP_DEADLINE:?}; its log:\n{}",
                read_log(self.dir.path())
            );
            std::thread::sleep(PROBE_INTERVAL);
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's pid only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_log(dir: &Path) -> String {
    let mut text = String::new();
    let _ = File::open(dir.join("etcd.log")).and_then(|mut f| f.read_to_string(&mut text));
    text
}

//! `portcullis-loadgen`: how many `StartSession` calls per second the server answers, allowed
//! and refused, at 1, 16 and 256 concurrent clients, and where the time goes.
//!
//! Everything runs in this process on this machine: the real server (axum, SQLite in a temp
//! dir, the seed's ABAC policy) on 127.0.0.1, and HTTP/1.1 keep-alive clients that sign every
//! request with `aws-sigv4`, the AWS Rust SDK's signer. Clients and server share the cores,
//! as they would on a 2-core box serving local users.
//!
//! Run: `cargo run --release -p portcullis-loadgen -- [--seconds 5] [--clients 1,16,256]`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis_core::model::Tag;
use portcullis_core::ops_ssm::{NewActivation, RegisterNode};
use portcullis_core::{Caller, Service};
use portcullis_store::SqliteStore;

const REGION: &str = "ap-northeast-1";
const ALLOWED_NODE: &str = "i-0885b2e35926f1fb3";
const REFUSED_NODE: &str = "i-0123456789abcdef0";
const ABAC: &str = include_str!("../../../examples/seed/pattern-3-abac.json");

struct Options {
    seconds: u64,
    clients: Vec<usize>,
}

fn options() -> anyhow::Result<Options> {
    let mut opts = Options {
        seconds: 5,
        clients: vec![1, 16, 256],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                opts.seconds = args.next().context("--seconds needs a value")?.parse()?
            }
            "--clients" => {
                opts.clients = args
                    .next()
                    .context("--clients needs a list")?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--help" | "-h" => {
                println!("portcullis-loadgen [--seconds N] [--clients 1,16,256]");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`"),
        }
    }
    Ok(opts)
}

/// The seed world: TestUserA (Project=test) with the ABAC policy, two connected nodes.
struct World {
    service: Arc<Service>,
    user_key: (String, String),
    _dir: tempfile::TempDir,
}

async fn world() -> anyhow::Result<World> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("portcullis.db")).await?;
    let boot = Service::start(Arc::new(store), Some("123456789012"), REGION).await?;
    let service = Arc::new(boot.service);
    let root_key = boot.new_root_key.context("a new store has a root key")?;
    let identity = service
        .authenticate(&root_key.id)
        .await?
        .context("root key")?;
    let root = Caller::new(identity, &root_key.id, "127.0.0.1", false);
    service
        .create_user(
            &root,
            "TestUserA",
            None,
            &[Tag::new("Project", "test")],
            None,
        )
        .await?;
    let policy = service
        .create_policy(&root, "abac", None, ABAC, None)
        .await?;
    service
        .attach_user_policy(&root, "TestUserA", &policy.arn)
        .await?;
    let key = service.create_access_key(&root, Some("TestUserA")).await?;
    for (node, project) in [(ALLOWED_NODE, "test"), (REFUSED_NODE, "prod")] {
        let new = NewActivation {
            iam_role: "SSMServiceRole".into(),
            ..NewActivation::default()
        };
        let (activation, code) = service.create_activation(&root, &new).await?;
        let reg = service
            .register_node(&RegisterNode {
                activation_id: activation.id,
                activation_code: code,
                instance_id: Some(node.into()),
                hostname: node.into(),
                platform: "Linux".into(),
                ..RegisterNode::default()
            })
            .await?;
        service
            .store()
            .set_node_tags(&reg.node_id, &[Tag::new("Project", project)])
            .await?;
    }
    Ok(World {
        service,
        user_key: (key.id, key.secret),
        _dir: dir,
    })
}

/// Keeps both nodes "Online" for the length of the run.
fn heartbeat(service: Arc<Service>, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            for node in [ALLOWED_NODE, REFUSED_NODE] {
                let _ = service.node_heartbeat(node).await;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
}

fn signed_request(
    host: &str,
    key: &(String, String),
    target: &str,
) -> anyhow::Result<http::Request<Full<Bytes>>> {
    let body = format!(r#"{{"Target":"{target}"}}"#);
    let headers = [
        ("host", host),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "AmazonSSM.StartSession"),
    ];
    let identity = Credentials::new(&key.0, &key.1, None, None, "loadgen").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("ssm")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let uri = format!("http://{host}/");
    let signable = SignableRequest::new(
        "POST",
        &uri,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    let mut builder = http::Request::builder().method("POST").uri(&uri);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let mut request = builder.body(Full::new(Bytes::from(body)))?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request)
}

struct Run {
    requests: usize,
    errors: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

async fn run(
    host: &str,
    key: &(String, String),
    target: &str,
    expect: u16,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<Run> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(clients)
        .build_http();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let client = client.clone();
        let (host, key, target) = (host.to_owned(), key.clone(), target.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let Ok(req) = signed_request(&host, &key, &target) else {
                    errors += 1;
                    continue;
                };
                let t = Instant::now();
                match client.request(req).await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let body = resp.into_body().collect().await.map(|b| b.to_bytes());
                        latencies.push(t.elapsed());
                        if status != expect || body.is_err() {
                            if errors == 0 {
                                let text = body
                                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                                    .unwrap_or_default();
                                eprintln!("unexpected reply {status}: {text}");
                            }
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut out = Run {
        requests: 0,
        errors: 0,
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (latencies, errors) = task.await?;
        out.requests += latencies.len();
        out.errors += errors;
        out.latencies.extend(latencies);
    }
    out.elapsed = started.elapsed();
    out.latencies.sort_unstable();
    Ok(out)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(at).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Where one authorized StartSession spends its time, measured piece by piece in-process.
async fn cost_split(world: &World, host: &str) -> anyhow::Result<()> {
    const N: u32 = 2000;
    let keys = portcullis_aws_api::SigningKeyCache::new(64);
    let req = signed_request(host, &world.user_key, ALLOWED_NODE)?;
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let header_refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let body = format!(r#"{{"Target":"{ALLOWED_NODE}"}}"#);
    let parts = portcullis_aws_api::RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &header_refs,
        body: body.as_bytes(),
    };
    let t = Instant::now();
    for _ in 0..N {
        let signed = portcullis_aws_api::sigv4::parse(&parts)
            .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        portcullis_aws_api::sigv4::verify(
            &signed,
            &parts,
            &world.user_key.1,
            SystemTime::now(),
            &keys,
        )
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    }
    let sig = t.elapsed() / N;

    let identity = world
        .service
        .authenticate(&world.user_key.0)
        .await?
        .context("user key")?;
    let caller = Caller::new(identity.clone(), &world.user_key.0, "127.0.0.1", false);
    let tags = [Tag::new("Project", "test")];
    let arn = world.service.node_arn(ALLOWED_NODE);
    let t = Instant::now();
    for _ in 0..N {
        world
            .service
            .authorize(&caller, "ssm:StartSession", &arn, &tags, &[])?;
    }
    let authz = t.elapsed() / N;

    let t = Instant::now();
    for _ in 0..N {
        let caller = Caller::new(identity.clone(), &world.user_key.0, "127.0.0.1", false);
        world
            .service
            .start_session(&caller, ALLOWED_NODE, None, None)
            .await?;
    }
    let op = t.elapsed() / N;

    let t = Instant::now();
    for _ in 0..N {
        let caller = Caller::new(identity.clone(), &world.user_key.0, "127.0.0.1", false);
        world.service.audit(&caller, "StartSession", None).await?;
    }
    let audit = t.elapsed() / N;

    let store = world.service.store();
    let t = Instant::now();
    for _ in 0..N {
        store.node(ALLOWED_NODE).await?;
        store.node_tags(ALLOWED_NODE).await?;
    }
    let node_read = t.elapsed() / N;
    let t = Instant::now();
    for i in 0..N {
        let session = portcullis_core::model::Session {
            id: format!("bench-{i}"),
            owner: "arn:aws:iam::123456789012:user/TestUserA".into(),
            target: ALLOWED_NODE.into(),
            document: "SSM-SessionManagerRunShell".into(),
            reason: String::new(),
            status: portcullis_core::model::SessionStatus::Connected,
            started: 0,
            ended: None,
        };
        store.insert_session(&session).await?;
    }
    let session_write = t.elapsed() / N;

    println!();
    println!("cost of one authorized StartSession, in-process, mean of {N}:");
    println!(
        "  signature check (parse + verify)      {:>8.1} µs",
        sig.as_secs_f64() * 1e6
    );
    println!(
        "  authorization (engine explain)        {:>8.1} µs",
        authz.as_secs_f64() * 1e6
    );
    println!(
        "  operation (authorize, node read, session write) {:>8.1} µs",
        op.as_secs_f64() * 1e6
    );
    println!(
        "  audit write                           {:>8.1} µs",
        audit.as_secs_f64() * 1e6
    );
    println!(
        "    of which node + tags read           {:>8.1} µs",
        node_read.as_secs_f64() * 1e6
    );
    println!(
        "    of which session insert             {:>8.1} µs",
        session_write.as_secs_f64() * 1e6
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = options()?;
    let world = world().await?;
    let stop = Arc::new(AtomicBool::new(false));
    heartbeat(world.service.clone(), stop.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let host = listener.local_addr()?.to_string();
    let state = Arc::new(portcullis_server::AppState::new(
        world.service.clone(),
        false,
    ));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(portcullis_server::serve(listener, state, async {
        let _ = rx.await;
    }));

    println!(
        "StartSession through HTTP, signed per request with aws-sigv4, {} s per row",
        opts.seconds
    );
    println!(
        "{:<10} {:>8} {:>12} {:>10} {:>10} {:>8}",
        "case", "clients", "requests/s", "p50 ms", "p99 ms", "errors"
    );
    for (case, target, expect) in [
        ("allowed", ALLOWED_NODE, 200),
        ("refused", REFUSED_NODE, 400),
    ] {
        for &clients in &opts.clients {
            let r = run(
                &host,
                &world.user_key,
                target,
                expect,
                clients,
                opts.seconds,
            )
            .await?;
            println!(
                "{case:<10} {clients:>8} {:>12.0} {:>10.2} {:>10.2} {:>8}",
                r.requests as f64 / r.elapsed.as_secs_f64(),
                ms(percentile(&r.latencies, 0.50)),
                ms(percentile(&r.latencies, 0.99)),
                r.errors
            );
        }
    }
    cost_split(&world, &host).await?;
    stop.store(true, Ordering::Relaxed);
    let _ = tx.send(());
    let _ = server.await;
    Ok(())
}

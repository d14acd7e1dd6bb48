//! A TCP proxy in front of the server that the tests can cut: drop every live connection,
//! refuse new ones for a while, or silently swallow what the client sends.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone)]
pub struct Proxy {
    pub addr: SocketAddr,
    refuse: Arc<AtomicBool>,
    blackhole: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let refuse = Arc::new(AtomicBool::new(false));
        let blackhole = Arc::new(AtomicBool::new(false));
        let (cut, _) = watch::channel(0_u64);
        let (r, b, c) = (refuse.clone(), blackhole.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if r.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                tokio::spawn(pump(client, server, b.clone(), c.subscribe()));
            }
        });
        Proxy {
            addr,
            refuse,
            blackhole,
            cut,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes every connection now.
    pub fn cut(&self) {
        self.cut.send_modify(|g| *g += 1);
    }

    /// New connections are closed at once while on.
    pub fn refuse(&self, on: bool) {
        self.refuse.store(on, Ordering::SeqCst);
    }

    /// Bytes from clients are dropped (not forwarded) while on.
    pub fn blackhole(&self, on: bool) {
        self.blackhole.store(on, Ordering::SeqCst);
    }
}

async fn pump(
    mut client: TcpStream,
    mut server: TcpStream,
    blackhole: Arc<AtomicBool>,
    mut cut: watch::Receiver<u64>,
) {
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let mut up = [0_u8; 16384];
    let mut down = [0_u8; 16384];
    loop {
        tokio::select! {
            n = cr.read(&mut up) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if !blackhole.load(Ordering::SeqCst) && sw.write_all(&up[..n]).await.is_err() {
                        return;
                    }
                }
            },
            n = sr.read(&mut down) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if cw.write_all(&down[..n]).await.is_err() {
                        return;
                    }
                }
            },
            _ = cut.changed() => return,
        }
    }
}

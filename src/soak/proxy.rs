//! A TCP proxy that can be cut and restored, or hold its connections: the broker or the database
//! "going away" for the processes behind it only, so a soak or a test that
//! needs an outage leaves the shared services to everyone else; and a
//! service's URL rewritten to go through one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    carried: Arc<AtomicUsize>,
    cuts: watch::Sender<u64>,
    holds: watch::Sender<u64>,
}

impl Proxy {
    /// Forwards every connection to `target` until cut.
    pub async fn start(target: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let refused = Arc::new(AtomicUsize::new(0));
        let carried = Arc::new(AtomicUsize::new(0));
        let (cuts, _) = watch::channel(0u64);
        let (holds, _) = watch::channel(0u64);
        let target = target.to_owned();
        let (up2, refused2, cuts2) = (up.clone(), refused.clone(), cuts.clone());
        let holds2 = holds.clone();
        let carried2 = carried.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    refused2.fetch_add(1, Ordering::SeqCst);
                    drop(client);
                    continue;
                }
                let mut cut = cuts2.subscribe();
                let mut held = holds2.subscribe();
                let target = target.clone();
                let carried = carried2.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    carried.fetch_add(1, Ordering::SeqCst);
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                        // Held: both sockets stay open, carrying nothing, until cut.
                        _ = held.changed() => { let _ = cut.changed().await; }
                    }
                });
            }
        });
        Ok(Self {
            addr,
            up,
            refused,
            carried,
            cuts,
            holds,
        })
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Stops carrying anything on the connections open now, without
    /// closing them: a peer gone without a word (a host lost, packets
    /// dropped), which only a time-out notices. New connections still pass.
    pub fn hold(&self) {
        self.holds.send_modify(|n| *n += 1);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// Connections refused while cut.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Connections passed through to the target so far.
    pub fn carried(&self) -> usize {
        self.carried.load(Ordering::SeqCst)
    }
}

/// The same URL through a proxy: host and port replaced by `addr`.
pub(crate) fn via(url: &str, addr: SocketAddr) -> anyhow::Result<String> {
    let mut u = reqwest::Url::parse(url)
        .context("cannot read a URL (not shown: it may hold a password)")?;
    u.set_host(Some(&addr.ip().to_string()))?;
    u.set_port(Some(addr.port()))
        .map_err(|()| anyhow::anyhow!("cannot set the port of a URL (not shown)"))?;
    Ok(u.to_string())
}

/// host:port of a URL, for a proxy's target.
pub(crate) fn target(url: &str, default_port: u16) -> anyhow::Result<String> {
    let u = reqwest::Url::parse(url)
        .context("cannot read a URL (not shown: it may hold a password)")?;
    let host = u.host_str().unwrap_or("127.0.0.1");
    Ok(format!("{host}:{}", u.port().unwrap_or(default_port)))
}

//! Connecting the processes of a cluster, before timely starts on the connections: each process listens on its
//! own address's port, connects to every process of lower index and accepts every one of higher index
//! (timely's own order), and each side opens with a hello (a magic word, its index and the cluster's size), so
//! that a stray connection or a process started with another `-n` is refused by name. An address that does not
//! answer yet, or does not resolve yet (a Kubernetes pod whose name is not in DNS until it runs), is retried
//! every second, logged, until `--connect-timeout`; then [`connect`] fails naming the processes that never
//! answered ([`Unreachable`]), which the binary turns into exit status
//! [`PEERS_UNREACHABLE`](super::exit::PEERS_UNREACHABLE).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The first bytes of every connection between two processes of a job.
const MAGIC: &[u8; 8] = b"IOTCLST1";
/// How often an address that does not answer is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// The processes that did not answer within the connect timeout.
#[derive(Debug, thiserror::Error)]
#[error(
    "process {me} could not reach process(es) {missing} of the cluster within --connect-timeout {within}: start \
     every process (the same -n, the same host file), check that each address in the host file is this \
     process's peer and reachable, or raise --connect-timeout"
)]
pub struct Unreachable {
    /// This process.
    pub me: usize,
    /// The missing processes with their addresses, as text.
    pub missing: String,
    /// The timeout, as text.
    pub within: String,
}

/// One connection per process of the cluster, by index (`None` at this process's own index), each blocking
/// with `TCP_NODELAY`, ready for timely's network threads.
pub fn connect(addresses: &[String], me: usize, within: Duration) -> Result<Vec<Option<TcpStream>>> {
    let n = addresses.len();
    let deadline = Instant::now() + within;
    let listener = listen(&addresses[me])?;
    let mut sockets: Vec<Option<TcpStream>> = (0..n).map(|_| None).collect();
    let mut tries = 0u64;
    // Lower indices: connect to them (they accept).
    for (p, address) in addresses.iter().enumerate().take(me) {
        loop {
            match dial(address).and_then(|mut s| {
                hello(&mut s, me, n)?;
                Ok(s)
            }) {
                Ok(s) => {
                    tracing::info!(process = me, peer = p, %address, "connected");
                    sockets[p] = Some(s);
                    break;
                }
                Err(e) if Instant::now() < deadline => {
                    if tries.is_multiple_of(10) {
                        tracing::info!(process = me, peer = p, %address, error = %e, "waiting for a peer to start");
                    }
                    tries += 1;
                    std::thread::sleep(RETRY);
                }
                Err(_) => return Err(unreachable(addresses, me, &sockets, within).into()),
            }
        }
    }
    // Higher indices: accept them, whatever order they come in.
    listener.set_nonblocking(true)?;
    let mut last_log = Instant::now();
    while sockets.iter().enumerate().skip(me + 1).any(|(_, s)| s.is_none()) {
        match listener.accept() {
            Ok((mut stream, from)) => {
                stream.set_nonblocking(false)?;
                stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                match read_hello(&mut stream, n) {
                    Ok(p) if p > me && p < n && sockets[p].is_none() => {
                        stream.set_read_timeout(None)?;
                        stream.set_nodelay(true)?;
                        tracing::info!(process = me, peer = p, %from, "connected");
                        sockets[p] = Some(stream);
                    }
                    Ok(p) => tracing::warn!(process = me, %from, said = p, "refused a connection: not a peer this \
                                            process waits for"),
                    Err(e) => tracing::warn!(process = me, %from, error = %e, "refused a connection"),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(unreachable(addresses, me, &sockets, within).into());
                }
                if last_log.elapsed() >= Duration::from_secs(10) {
                    last_log = Instant::now();
                    let waiting = (me + 1..n).filter(|p| sockets[*p].is_none()).count();
                    tracing::info!(process = me, waiting, "waiting for peers to connect");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e).context("accepting a peer's connection"),
        }
    }
    Ok(sockets)
}

/// Listens on `address`'s port: on its IP when it is one, on every interface when it is a name (a pod's DNS
/// name resolves to the pod only once the pod runs).
fn listen(address: &str) -> Result<TcpListener> {
    let (host, port) = address
        .rsplit_once(':')
        .with_context(|| format!("the host file's address {address:?} has no :port"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("the host file's address {address:?} has no valid port"))?;
    let ip = host
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    TcpListener::bind(SocketAddr::new(ip, port)).with_context(|| {
        format!("cannot listen on {address} (this process's line in the host file): is the port taken?")
    })
}

/// One attempt to reach `address`.
fn dial(address: &str) -> Result<TcpStream> {
    let resolved: Vec<SocketAddr> = address
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {address}"))?
        .collect();
    let mut last = None;
    for a in resolved {
        match TcpStream::connect_timeout(&a, RETRY) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e).with_context(|| format!("cannot connect to {address}")),
        None => bail!("{address} resolves to no address"),
    }
}

/// Writes this process's hello.
fn hello(stream: &mut TcpStream, me: usize, n: usize) -> Result<()> {
    let mut bytes = MAGIC.to_vec();
    bytes.extend((me as u64).to_le_bytes());
    bytes.extend((n as u64).to_le_bytes());
    stream.write_all(&bytes)?;
    Ok(())
}

/// Reads a peer's hello: its index, once the magic and the cluster size match.
fn read_hello(stream: &mut TcpStream, n: usize) -> Result<usize> {
    let mut bytes = [0u8; 24];
    stream.read_exact(&mut bytes).context("no hello")?;
    if &bytes[..8] != MAGIC {
        bail!("not a process of this job (no hello)");
    }
    let index = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
    let size = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes")) as usize;
    if size != n {
        bail!("process {index} was started with -n {size}, this one with -n {n}: give every process the same -n");
    }
    Ok(index)
}

fn unreachable(addresses: &[String], me: usize, sockets: &[Option<TcpStream>], within: Duration) -> Unreachable {
    let missing: Vec<String> = (0..addresses.len())
        .filter(|p| *p != me && sockets[*p].is_none())
        .map(|p| format!("{p} ({})", addresses[p]))
        .collect();
    Unreachable {
        me,
        missing: missing.join(", "),
        within: humantime::format_duration(within).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_ports(n: usize) -> Vec<String> {
        let listeners: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
        listeners
            .iter()
            .map(|l| format!("127.0.0.1:{}", l.local_addr().unwrap().port()))
            .collect()
    }

    #[test]
    fn three_processes_connect_whatever_order_they_start_in() {
        let addresses = free_ports(3);
        let handles: Vec<_> = [2usize, 0, 1]
            .into_iter()
            .map(|p| {
                let a = addresses.clone();
                std::thread::sleep(Duration::from_millis(300));
                std::thread::spawn(move || (p, connect(&a, p, Duration::from_secs(20)).unwrap()))
            })
            .collect();
        for h in handles {
            let (p, sockets) = h.join().unwrap();
            for (q, s) in sockets.iter().enumerate() {
                assert_eq!(s.is_some(), q != p, "process {p}, peer {q}");
            }
        }
    }

    #[test]
    fn a_peer_that_never_starts_is_named_after_the_timeout() {
        let addresses = free_ports(2);
        let err = connect(&addresses, 1, Duration::from_millis(1500)).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains(&format!("process(es) 0 ({})", addresses[0])), "{text}");
        assert!(err.downcast_ref::<Unreachable>().is_some());
    }
}

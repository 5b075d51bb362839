//! A TCP proxy on loopback that breaks connections on purpose: it stands
//! between the `escale` processes and a real relay server and, driven by a
//! seeded random generator, cuts connections in the middle of a transfer,
//! holds data back for a while, or slows everything down, and counts what
//! it did so that a test can say how hard it was tested.
//!
//! It works below HTTP, FTP or SSH: it only moves bytes, so what the client
//! sees is what a flaky network or a dying server looks like — a
//! connection closed in the middle of a request or an answer, or data that
//! arrives late — and the server sees a client that went away.
//!
//! The seed fixes the fate of each connection by its order of arrival
//! (whether it is cut, after how many bytes, which reads are delayed, by
//! how much); which request travels on which connection depends on timing,
//! so a run is not replayed exactly, but the same amount of trouble is.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy does to the connections it forwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// The chance that a new connection is to be cut (0 to 1).
    pub cut_chance: f64,
    /// A connection to be cut is cut once this many bytes, both directions
    /// together, went through it. Drawn log-uniformly from the range (as
    /// many cuts within the first kilobytes as within the first megabytes),
    /// so that a connection carrying a few small requests is as likely to
    /// be cut as one carrying a big upload. A connection that carries fewer
    /// bytes ends normally.
    pub cut_after: Range<u64>,
    /// The chance that a piece of data read from one side waits before it
    /// is passed on (0 to 1).
    pub delay_chance: f64,
    /// How long such a piece waits, in milliseconds, drawn uniformly.
    pub delay_ms: Range<u64>,
    /// A limit in bytes per second for each direction of each connection,
    /// so that a transfer lasts long enough to be interrupted.
    pub rate: Option<u64>,
}

impl Faults {
    /// No fault: the proxy forwards everything as it comes.
    pub fn none() -> Faults {
        Faults {
            cut_chance: 0.0,
            cut_after: 0..0,
            delay_chance: 0.0,
            delay_ms: 0..0,
            rate: None,
        }
    }
}

/// What the proxy did so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Connections accepted.
    pub connections: u64,
    /// Connections cut in the middle.
    pub cuts: u64,
    /// Pieces of data held back.
    pub delays: u64,
    /// Connections closed at once because the server could not be reached.
    pub unreachable: u64,
    /// Bytes passed from the clients to the server.
    pub bytes_up: u64,
    /// Bytes passed from the server to the clients.
    pub bytes_down: u64,
}

/// The proxy's counters, shared by its threads.
#[derive(Debug, Default)]
struct Stats {
    connections: AtomicU64,
    cuts: AtomicU64,
    delays: AtomicU64,
    unreachable: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// What every thread of the proxy shares.
#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    seed: u64,
    faults: Mutex<Faults>,
    stats: Stats,
    stop: AtomicBool,
    /// The open connections, to close them when the proxy stops.
    open: Mutex<Vec<Weak<Connection>>>,
}

/// A running proxy; stopped, with every connection closed, when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1` (a free port) to `upstream`, doing
    /// `faults` with random choices drawn from `seed`.
    ///
    /// # Panics
    ///
    /// If no port can be opened on loopback.
    pub fn start(upstream: SocketAddr, seed: u64, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port on 127.0.0.1");
        let addr = listener.local_addr().expect("the proxy's own address");
        let shared = Arc::new(Shared {
            upstream,
            seed,
            faults: Mutex::new(faults),
            stats: Stats::default(),
            stop: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept(&listener, &shared))
        };
        FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The address clients connect to instead of the server's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes the faults for the connections accepted from now on.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
    }

    /// What the proxy did so far.
    pub fn counts(&self) -> Counts {
        let stats = &self.shared.stats;
        Counts {
            connections: stats.connections.load(Ordering::SeqCst),
            cuts: stats.cuts.load(Ordering::SeqCst),
            delays: stats.delays.load(Ordering::SeqCst),
            unreachable: stats.unreachable.load(Ordering::SeqCst),
            bytes_up: stats.bytes_up.load(Ordering::SeqCst),
            bytes_down: stats.bytes_down.load(Ordering::SeqCst),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // The acceptor waits in `accept`: a connection wakes it up to see
        // the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for connection in lock(&self.shared.open).drain(..) {
            if let Some(connection) = connection.upgrade() {
                connection.close();
            }
        }
    }
}

/// Locks `mutex`, even if a panicking thread held it: the data inside
/// (faults, a list of connections) stays valid.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let shared = Arc::clone(shared);
        std::thread::spawn(move || serve(client, &shared));
    }
}

/// One proxied connection: both sockets, and when to cut them.
#[derive(Debug)]
struct Connection {
    client: TcpStream,
    server: TcpStream,
    /// Bytes passed on so far, both directions.
    passed: AtomicU64,
    /// After how many bytes to cut, if this connection is to be cut.
    cut_at: Option<u64>,
    /// Whether it was cut (counted once).
    cut: AtomicBool,
}

impl Connection {
    /// Closes both sockets both ways: the two sides see the connection end.
    fn close(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}

fn serve(client: TcpStream, shared: &Arc<Shared>) {
    let index = shared.stats.connections.fetch_add(1, Ordering::SeqCst);
    let faults = lock(&shared.faults).clone();
    let mut rng = Rng::new(shared.seed, index);
    let Ok(server) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5)) else {
        shared.stats.unreachable.fetch_add(1, Ordering::SeqCst);
        // Dropping the client's socket closes it: to the client the server
        // went away, as when it is down behind a load balancer.
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let cut_at = rng
        .chance(faults.cut_chance)
        .then(|| rng.log_within(faults.cut_after.clone()));
    let (Ok(client_side), Ok(server_side)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let connection = Arc::new(Connection {
        client,
        server,
        passed: AtomicU64::new(0),
        cut_at,
        cut: AtomicBool::new(false),
    });
    {
        let mut open = lock(&shared.open);
        open.retain(|c| c.strong_count() > 0);
        open.push(Arc::downgrade(&connection));
    }
    let up = {
        let (connection, shared) = (Arc::clone(&connection), Arc::clone(shared));
        let rng = Rng::new(rng.next(), 0);
        let faults = faults.clone();
        std::thread::spawn(move || {
            pump(
                client_side,
                &connection.server,
                &connection,
                &shared,
                rng,
                &faults,
                true,
            );
        })
    };
    let down_rng = Rng::new(rng.next(), 1);
    pump(
        server_side,
        &connection.client,
        &connection,
        shared,
        down_rng,
        &faults,
        false,
    );
    let _ = up.join();
}

/// Passes bytes from `from` to `to` until either side ends or the
/// connection is cut. `up`: from the client to the server.
fn pump(
    mut from: TcpStream,
    mut to: &TcpStream,
    connection: &Connection,
    shared: &Shared,
    mut rng: Rng,
    faults: &Faults,
    up: bool,
) {
    let stats = &shared.stats;
    let moved = if up {
        &stats.bytes_up
    } else {
        &stats.bytes_down
    };
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) => {
                // The sender is done: pass the end on, the other
                // direction may still carry an answer.
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(read) => read,
            Err(_) => {
                connection.close();
                return;
            }
        };
        let mut piece = &buffer[..read];
        let before = connection.passed.fetch_add(read as u64, Ordering::SeqCst);
        let cut_now = connection
            .cut_at
            .is_some_and(|cut_at| before + read as u64 >= cut_at);
        if let Some(cut_at) = connection.cut_at.filter(|_| cut_now) {
            // Up to the byte where the cut falls, so that the cut can land
            // anywhere, request line, headers or body.
            let keep = usize::try_from(cut_at.saturating_sub(before)).unwrap_or(read);
            piece = &piece[..keep.min(read)];
        }
        if rng.chance(faults.delay_chance) {
            stats.delays.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(rng.within(faults.delay_ms.clone())));
        }
        if let Some(rate) = faults.rate.filter(|rate| *rate > 0) {
            std::thread::sleep(Duration::from_secs_f64(piece.len() as f64 / rate as f64));
        }
        if to.write_all(piece).is_err() {
            connection.close();
            return;
        }
        moved.fetch_add(piece.len() as u64, Ordering::SeqCst);
        if cut_now {
            if !connection.cut.swap(true, Ordering::SeqCst) {
                stats.cuts.fetch_add(1, Ordering::SeqCst);
            }
            connection.close();
            return;
        }
    }
}

/// SplitMix64: small, fast, and the same numbers from the same seed on
/// every machine, which is all a fault schedule needs.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    /// The generator for `stream` (a connection's number) under `seed`.
    fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        // 53 random bits: a uniform float in [0, 1).
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }

    /// A number in `range` drawn log-uniformly (its logarithm uniform), or
    /// its start if it is empty.
    fn log_within(&mut self, range: Range<u64>) -> u64 {
        if range.is_empty() {
            return range.start;
        }
        let low = (range.start.max(1) as f64).ln();
        let high = (range.end as f64).ln();
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let drawn = (low + unit * (high - low)).exp() as u64;
        drawn.clamp(range.start, range.end - 1)
    }

    /// A number in `range`, or its start if it is empty.
    fn within(&mut self, range: Range<u64>) -> u64 {
        if range.is_empty() {
            range.start
        } else {
            range.start + self.next() % (range.end - range.start)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A server that sends back everything it receives, until the client
    /// closes.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                std::thread::spawn(move || {
                    let mut back = stream.try_clone().unwrap();
                    let _ = std::io::copy(&mut stream, &mut back);
                    let _ = back.shutdown(Shutdown::Write);
                });
            }
        });
        addr
    }

    fn noise(len: usize) -> Vec<u8> {
        let mut rng = Rng::new(42, 0);
        (0..len).map(|_| rng.next() as u8).collect()
    }

    /// Sends `data` through `addr` from one thread and reads what comes
    /// back until the end (or an error) in this one.
    fn round_trip(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let data = data.to_vec();
        let sender = std::thread::spawn(move || {
            // The write fails once the proxy cuts: that is the point.
            let _ = writer.write_all(&data);
            let _ = writer.shutdown(Shutdown::Write);
        });
        let mut back = Vec::new();
        let _ = stream.read_to_end(&mut back);
        sender.join().unwrap();
        back
    }

    #[test]
    fn without_faults_every_byte_arrives_intact() {
        let proxy = FaultProxy::start(echo_server(), 1, Faults::none());
        let data = noise(3 * 1024 * 1024 + 17);
        assert_eq!(round_trip(proxy.addr(), &data), data);
        let counts = proxy.counts();
        assert_eq!(counts.connections, 1);
        assert_eq!((counts.cuts, counts.delays, counts.unreachable), (0, 0, 0));
        assert_eq!(counts.bytes_up, data.len() as u64);
        assert_eq!(counts.bytes_down, data.len() as u64);
    }

    #[test]
    fn a_cut_connection_ends_after_the_bytes_drawn_and_is_counted() {
        let faults = Faults {
            cut_chance: 1.0,
            cut_after: 5000..5001,
            ..Faults::none()
        };
        let proxy = FaultProxy::start(echo_server(), 2, faults);
        let data = noise(1024 * 1024);
        let back = round_trip(proxy.addr(), &data);
        // Up and down together stop at 5000 bytes (fewer if the direction
        // that did not cut was about to write), and what did arrive is
        // what was sent: a cut, not corruption.
        assert!(back.len() < 5000, "{} bytes came back", back.len());
        assert_eq!(back, data[..back.len()]);
        let counts = proxy.counts();
        assert_eq!(counts.cuts, 1);
        assert!(counts.bytes_up + counts.bytes_down <= 5000, "{counts:?}");
    }

    #[test]
    fn delays_hold_data_back_without_changing_it() {
        let faults = Faults {
            delay_chance: 1.0,
            delay_ms: 1..3,
            ..Faults::none()
        };
        let proxy = FaultProxy::start(echo_server(), 3, faults);
        let data = noise(100_000);
        assert_eq!(round_trip(proxy.addr(), &data), data);
        assert!(proxy.counts().delays >= 2, "{:?}", proxy.counts());
    }

    #[test]
    fn the_same_seed_cuts_the_same_connections() {
        let faults = Faults {
            cut_chance: 0.5,
            cut_after: 10..20,
            ..Faults::none()
        };
        let fates = |seed| {
            (0..64)
                .map(|index| {
                    let mut rng = Rng::new(seed, index);
                    rng.chance(faults.cut_chance)
                        .then(|| rng.log_within(faults.cut_after.clone()))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(fates(7), fates(7));
        assert!(fates(7).iter().flatten().all(|at| (10..20).contains(at)));
        assert_ne!(fates(7), fates(8));
        let cut = fates(7).iter().filter(|fate| fate.is_some()).count();
        assert!(
            (16..48).contains(&cut),
            "{cut} of 64 cut at a chance of 0.5"
        );
    }

    #[test]
    fn a_server_that_is_down_closes_the_connection_and_is_counted() {
        let free = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let proxy = FaultProxy::start(free, 4, Faults::none());
        assert_eq!(round_trip(proxy.addr(), b"hello"), b"");
        assert_eq!(proxy.counts().unreachable, 1);
    }
}

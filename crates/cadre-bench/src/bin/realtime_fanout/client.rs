//! The bench's WebSocket client: plain sockets, opened by a few threads,
//! then read by one epoll loop on a thread of its own. Reading 10,000
//! sockets is the client's whole job, and both servers share the two cores
//! with it, so it must cost as little as the kernel allows: a
//! tokio-tungstenite client (one task per socket) took more CPU per
//! delivery than either server, and the figures were the client's.
//!
//! The framing is RFC 6455's, for what these servers send: unfragmented
//! text frames (a continuation frame is read as one of its own), pings
//! (answered with pongs) and close frames. Client frames are masked.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use mio::{Events, Interest, Poll, Token, Waker};

/// What a connection says once the WebSocket is open.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Greeting {
    /// cadre: `subscribe` to a channel and wait for `subscribed`.
    Subscribe,
    /// Socket.IO: wait for Engine.IO's open packet, connect to `/`.
    SocketIo,
}

/// One connection to open: the request path (with its query) and, for
/// cadre, the channel to subscribe to.
pub(crate) struct Target {
    pub(crate) path: String,
    pub(crate) channel: String,
}

pub(crate) const OPCODE_TEXT: u8 = 0x1;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;
const OPCODE_PONG: u8 = 0xA;
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const WAKE: Token = Token(usize::MAX);
/// Threads opening connections (each waits for its handshake).
const OPENERS: usize = 8;

/// A whole frame. Clients mask their frames and servers must not, so the
/// client passes [`MASK`] and the bare server `None`.
pub(crate) fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let masked = if mask.is_some() { 0x80 } else { 0 };
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(masked | n as u8),
        n @ 126..=0xffff => {
            out.push(masked | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(masked | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(mask) => {
            out.extend_from_slice(&mask);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// The first complete server frame in `buf`: its opcode, where its
/// payload is, and its length on the wire.
fn parse(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let (len, header) = match b1 & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (usize::try_from(u64::from_be_bytes(bytes)).ok()?, 10)
        }
        n => (usize::from(n), 2),
    };
    // Servers do not mask; a masked frame would carry four more bytes.
    let header = header + if b1 & 0x80 != 0 { 4 } else { 0 };
    let total = header + len;
    (buf.len() >= total).then_some((b0 & 0x0f, header..total, total))
}

/// The event number inside a message (`bench-N-…`).
pub(crate) fn event_number(text: &[u8]) -> Option<u32> {
    let at = text.windows(6).position(|w| w == b"bench-")? + 6;
    let digits = text[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut n: u32 = 0;
    let mut any = false;
    for d in digits {
        n = n.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
        any = true;
    }
    any.then_some(n)
}

/// One open connection and the bytes of a frame not yet whole.
struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Conn {
    /// Connects and upgrades to WebSocket (blocking).
    fn open(addr: SocketAddr, path: &str) -> anyhow::Result<Self> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )?;
        let mut head = Vec::with_capacity(512);
        let mut chunk = [0u8; 1024];
        let end = loop {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                bail!("closed during the WebSocket handshake");
            }
            head.extend_from_slice(&chunk[..n]);
            if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        if !head.starts_with(b"HTTP/1.1 101") {
            bail!(
                "upgrade refused: {}",
                String::from_utf8_lossy(&head[..end.min(200)])
            );
        }
        Ok(Self {
            stream,
            pending: head.split_off(end),
        })
    }

    /// The next whole message (blocking): opcode and payload.
    fn next(&mut self) -> anyhow::Result<(u8, Vec<u8>)> {
        loop {
            if let Some((opcode, payload, total)) = parse(&self.pending) {
                let text = self.pending[payload].to_vec();
                self.pending.drain(..total);
                return Ok((opcode, text));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                bail!("closed before the greeting was done");
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }

    fn greet(&mut self, greeting: Greeting, channel: &str) -> anyhow::Result<()> {
        match greeting {
            Greeting::Subscribe => {
                let subscribe =
                    serde_json::json!({"type": "subscribe", "payload": {"channel": channel}});
                self.stream.write_all(&frame(
                    OPCODE_TEXT,
                    subscribe.to_string().as_bytes(),
                    Some(MASK),
                ))?;
                loop {
                    let (opcode, text) = self.next()?;
                    if opcode != OPCODE_TEXT {
                        continue;
                    }
                    if text.windows(12).any(|w| w == b"\"subscribed\"") {
                        return Ok(());
                    }
                    bail!("subscription refused: {}", String::from_utf8_lossy(&text));
                }
            }
            Greeting::SocketIo => {
                let (_, open) = self.next()?;
                if !open.starts_with(b"0") {
                    bail!("not an Engine.IO open packet");
                }
                self.stream
                    .write_all(&frame(OPCODE_TEXT, b"40", Some(MASK)))?;
                loop {
                    let (opcode, text) = self.next()?;
                    if opcode == OPCODE_TEXT && text.starts_with(b"40") {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Opens every target (`OPENERS` at a time) and greets it.
pub(crate) fn open_all(
    addr: SocketAddr,
    greeting: Greeting,
    targets: &[Target],
) -> anyhow::Result<Listening> {
    let started = Instant::now();
    let mut conns: Vec<Option<Conn>> = Vec::with_capacity(targets.len());
    conns.resize_with(targets.len(), || None);
    std::thread::scope(|scope| {
        let chunk = targets.len().div_ceil(OPENERS).max(1);
        let handles: Vec<_> = targets
            .chunks(chunk)
            .zip(conns.chunks_mut(chunk))
            .enumerate()
            .map(|(c, (targets, slots))| {
                scope.spawn(move || {
                    for (i, (target, slot)) in targets.iter().zip(slots).enumerate() {
                        let mut conn = Conn::open(addr, &target.path)
                            .with_context(|| format!("opening connection {}", c * chunk + i))?;
                        conn.greet(greeting, &target.channel)?;
                        *slot = Some(conn);
                    }
                    Ok::<_, anyhow::Error>(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| anyhow::anyhow!("an opener panicked"))?
        })
    })?;
    println!(
        "  {} connections open in {:.1} s",
        conns.len(),
        started.elapsed().as_secs_f64()
    );
    Listening::start(conns.into_iter().flatten().collect(), greeting)
}

/// The reading thread and what it has counted so far.
pub(crate) struct Listening {
    pub(crate) delivered: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: std::thread::JoinHandle<io::Result<Vec<(u32, Instant)>>>,
}

impl Listening {
    fn start(conns: Vec<Conn>, greeting: Greeting) -> anyhow::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let delivered = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut live = Vec::with_capacity(conns.len());
        for (i, conn) in conns.into_iter().enumerate() {
            conn.stream.set_nonblocking(true)?;
            let mut stream = mio::net::TcpStream::from_std(conn.stream);
            poll.registry()
                .register(&mut stream, Token(i), Interest::READABLE)?;
            live.push(Some((stream, conn.pending)));
        }
        let thread = {
            let (delivered, stop) = (Arc::clone(&delivered), Arc::clone(&stop));
            std::thread::spawn(move || read_loop(poll, live, greeting, &delivered, &stop))
        };
        Ok(Self {
            delivered,
            stop,
            waker,
            thread,
        })
    }

    /// Stops reading and returns every arrival seen: (event number, when).
    pub(crate) fn finish(self) -> anyhow::Result<Vec<(u32, Instant)>> {
        self.stop.store(true, Ordering::Release);
        self.waker.wake()?;
        Ok(self
            .thread
            .join()
            .map_err(|_| anyhow::anyhow!("the reader panicked"))??)
    }
}

type Live = Vec<Option<(mio::net::TcpStream, Vec<u8>)>>;

/// Reads until told to stop. mio's readiness is edge-triggered: a read
/// that returns less than the buffer has drained the socket, and new data
/// raises a new edge, so a second read (for `WouldBlock`) is not needed.
fn read_loop(
    mut poll: Poll,
    mut live: Live,
    greeting: Greeting,
    delivered: &AtomicU64,
    stop: &AtomicBool,
) -> io::Result<Vec<(u32, Instant)>> {
    let mut events = Events::with_capacity(4096);
    let mut scratch = vec![0u8; 1 << 16];
    let mut seen = Vec::with_capacity(1 << 20);
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == WAKE {
                if stop.load(Ordering::Acquire) {
                    return Ok(seen);
                }
                continue;
            }
            let Some(slot) = live.get_mut(event.token().0) else {
                continue;
            };
            let Some((stream, pending)) = slot else {
                continue;
            };
            let mut open = true;
            loop {
                let n = match stream.read(&mut scratch) {
                    Ok(0) => {
                        open = false;
                        break;
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        open = false;
                        break;
                    }
                };
                let now = Instant::now();
                let mut counted = 0;
                pending.extend_from_slice(&scratch[..n]);
                let mut at = 0;
                while let Some((opcode, payload, total)) = parse(&pending[at..]) {
                    let text = &pending[at + payload.start..at + payload.end];
                    match opcode {
                        OPCODE_TEXT if greeting == Greeting::SocketIo && text == b"2" => {
                            let _ = stream.write_all(&frame(OPCODE_TEXT, b"3", Some(MASK)));
                        }
                        OPCODE_TEXT => {
                            if let Some(number) = event_number(text) {
                                seen.push((number, now));
                                counted += 1;
                            }
                        }
                        OPCODE_PING => {
                            let _ = stream.write_all(&frame(OPCODE_PONG, text, Some(MASK)));
                        }
                        OPCODE_CLOSE => open = false,
                        _ => {}
                    }
                    at += total;
                }
                pending.drain(..at);
                delivered.fetch_add(counted, Ordering::Release);
                if n < scratch.len() {
                    break;
                }
            }
            if !open {
                *slot = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_parser_after_unmasking() {
        let payload = vec![b'x'; 300];
        let wire = frame(OPCODE_TEXT, &payload, Some(MASK));
        let (opcode, range, total) = parse(&wire).expect("a whole frame");
        assert_eq!((opcode, total), (OPCODE_TEXT, wire.len()));
        let unmasked: Vec<u8> = wire[range]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ MASK[i % 4])
            .collect();
        assert_eq!(unmasked, payload);
        assert!(parse(&wire[..wire.len() - 1]).is_none());
        let unmasked = frame(OPCODE_TEXT, &payload, None);
        let (_, range, total) = parse(&unmasked).expect("a whole server frame");
        assert_eq!((&unmasked[range], total), (&payload[..], unmasked.len()));
    }

    #[test]
    fn event_numbers_are_read_from_the_message() {
        assert_eq!(event_number(br#"{"title":"bench-42-xx"}"#), Some(42));
        assert_eq!(event_number(b"bench-"), None);
        assert_eq!(event_number(b"no event"), None);
    }
}

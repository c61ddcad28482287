//! The floor: a server with no WebSocket library, no runtime and no
//! database, that only does what any server must for this fan-out — one
//! `write` per subscriber per event (one per subscriber for a whole burst),
//! from two threads, of a frame built once. It speaks just enough of the
//! protocol for the bench's client: it answers the upgrade and the
//! `subscribe` message. What it measures is this machine's loopback TCP with
//! the client beside it, which bounds every server's figures here.
//!
//! Run as `realtime_fanout --bare PORT CONTROL_PORT EVENT_BYTES`; the bench
//! publishes by writing `FIRST LAST\n` (event numbers, end excluded) to the
//! control port.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Writing threads: as many as the machine's cores (what cadre gets).
const WRITERS: usize = 2;

/// An unmasked server text frame.
fn frame(text: &[u8]) -> Vec<u8> {
    super::client::frame(super::client::OPCODE_TEXT, text, None)
}

/// The event as cadre would send it, padded to `bytes` on the wire.
fn event(n: u32, bytes: usize) -> Vec<u8> {
    let head = format!(r#"{{"type":"task_created","payload":{{"title":"bench-{n}-"#);
    let tail = r#""}}"#;
    let pad = bytes.saturating_sub(head.len() + tail.len() + 4);
    frame(format!("{head}{}{tail}", "x".repeat(pad)).as_bytes())
}

/// Answers the upgrade and the `subscribe` message; returns whether the
/// connection subscribed to the events' channel.
fn greet(stream: &TcpStream) -> std::io::Result<bool> {
    // The client sends nothing more until it is answered, so a buffered
    // reader takes nothing that belongs to later.
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut writer = stream;
    writer.write_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )?;
    // The client's one masked message: header, mask, payload.
    let mut header = [0u8; 2];
    reader.read_exact(&mut header)?;
    let len = match header[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            reader.read_exact(&mut n)?;
            usize::from(u16::from_be_bytes(n))
        }
        n => usize::from(n),
    };
    let mut mask = [0u8; 4];
    reader.read_exact(&mut mask)?;
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload)?;
    let text: Vec<u8> = payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    writer.write_all(&frame(br#"{"type":"subscribed"}"#))?;
    Ok(text.windows(6).any(|w| w == b"events"))
}

pub(crate) fn serve(port: u16, control: u16, event_bytes: usize) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let control = TcpListener::bind(("127.0.0.1", control))?;
    let subscribers: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    {
        let subscribers = Arc::clone(&subscribers);
        std::thread::spawn(move || {
            // Idle connections are kept open, never written to.
            let mut idle = Vec::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = stream.set_nodelay(true);
                match greet(&stream) {
                    Ok(true) => subscribers
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(stream),
                    Ok(false) => idle.push(stream),
                    Err(_) => {}
                }
            }
        });
    }
    let (stream, _) = control.accept()?;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        let mut bounds = line.split_whitespace().map(str::parse::<u32>);
        let (Some(Ok(first)), Some(Ok(last))) = (bounds.next(), bounds.next()) else {
            anyhow::bail!("control lines are `FIRST LAST`, got {line:?}");
        };
        // A burst is written to each subscriber at once, as cadre does.
        let wire: Vec<u8> = (first..last).flat_map(|n| event(n, event_bytes)).collect();
        let subscribers = subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::thread::scope(|scope| {
            for part in subscribers.chunks(subscribers.len().div_ceil(WRITERS).max(1)) {
                let wire = &wire;
                scope.spawn(move || {
                    for mut socket in part {
                        let _ = socket.write_all(wire);
                    }
                });
            }
        });
    }
    Ok(())
}

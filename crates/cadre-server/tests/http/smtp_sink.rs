//! A local SMTP server that speaks just enough of RFC 5321 for a client
//! (EHLO, MAIL, RCPT, DATA, QUIT) and keeps every message it receives.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Clone, Default)]
pub struct SmtpSink {
    pub port: u16,
    messages: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = SmtpSink {
            port: listener.local_addr().unwrap().port(),
            messages: Arc::default(),
        };
        let messages = Arc::clone(&sink.messages);
        #[expect(
            clippy::disallowed_methods,
            reason = "the sink lives as long as the test"
        )]
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let messages = Arc::clone(&messages);
                #[expect(clippy::disallowed_methods, reason = "one task per test connection")]
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 sink.test ESMTP\r\n").await.unwrap();
                    let mut data: Option<String> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(body) = data.as_mut() {
                            if line == "." {
                                messages
                                    .lock()
                                    .unwrap()
                                    .push(data.take().unwrap_or_default());
                                write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                            } else {
                                body.push_str(line.strip_prefix('.').unwrap_or(&line));
                                body.push('\n');
                            }
                            continue;
                        }
                        let verb = line
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250-sink.test\r\n250 8BITMIME\r\n",
                            "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 2.1.0 ok\r\n",
                            "DATA" => {
                                data = Some(String::new());
                                b"354 end with .\r\n"
                            }
                            "QUIT" => {
                                write.write_all(b"221 bye\r\n").await.unwrap();
                                break;
                            }
                            _ => b"502 5.5.2 unknown\r\n",
                        };
                        write.write_all(reply).await.unwrap();
                    }
                });
            }
        });
        sink
    }

    /// The `n`th message with a quoted-printable body decoded, as a mail
    /// client would show it.
    pub async fn decoded(&self, n: usize) -> String {
        decode_quoted_printable(&self.message(n).await)
    }

    /// Waits (up to 10 s) for the `n`th message and returns it.
    pub async fn message(&self, n: usize) -> String {
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                if let Some(m) = self.messages.lock().unwrap().get(n) {
                    return m.clone();
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("no mail arrived")
    }
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

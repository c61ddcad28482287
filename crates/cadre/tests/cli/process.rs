//! Running the binary and reading its JSON log lines.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `cadre` command with a clean `CADRE_*` environment.
pub fn cadre(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cadre"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("CADRE_LOG_FORMAT", "json")
        .env("CADRE_DATA_DIR", data_dir)
        .current_dir(data_dir.parent().unwrap());
    cmd
}

/// A running server and the log lines it has written so far.
pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<serde_json::Value>,
    /// Log lines up to and including "listening".
    pub startup: Vec<serde_json::Value>,
    pub base_url: String,
}

impl Running {
    /// Starts `cadre serve` on a free port and waits for it to listen.
    pub fn serve(mut cmd: Command) -> Running {
        cmd.args(["serve", "--bind", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        let mut child = cmd.spawn().expect("spawn cadre");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let value =
                    serde_json::from_str(&line).unwrap_or(serde_json::json!({ "raw": line }));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let (listening, mut startup) = wait_for(&lines, |l| l["message"] == "listening");
        let base_url = listening["url"].as_str().unwrap().to_owned();
        startup.push(listening);
        Running {
            child,
            lines,
            startup,
            base_url,
        }
    }

    /// The start-up line with this message.
    pub fn startup_line(&self, message: &str) -> &serde_json::Value {
        self.startup
            .iter()
            .find(|l| l["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line in {:#?}", self.startup))
    }

    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let url = format!("{}{}", self.base_url, path);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let resp = reqwest::get(&url).await.unwrap();
            (resp.status().as_u16(), resp.json().await.unwrap())
        })
    }

    /// POSTs JSON, with a bearer token when given.
    pub fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
        token: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let url = format!("{}{}", self.base_url, path);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut req = reqwest::Client::new().post(&url).json(body);
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json().await.unwrap())
        })
    }

    /// Sends SIGTERM and waits (at most 15 s) for the exit status.
    pub fn terminate(mut self) -> (ExitStatus, Vec<serde_json::Value>) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "cadre did not exit within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.lines.try_iter().collect())
    }
}

/// A server a test did not stop (it failed, or had no reason to) must not
/// outlive it: `std::process::Child` does not kill on drop.
impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The first log line matching `pred` and the lines before it, failing
/// after 30 s with what was seen.
pub fn wait_for(
    lines: &mpsc::Receiver<serde_json::Value>,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> (serde_json::Value, Vec<serde_json::Value>) {
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if pred(&line) => return (line, seen),
            Ok(line) => seen.push(line),
            Err(_) => panic!("expected log line never came; saw: {seen:#?}"),
        }
    }
}

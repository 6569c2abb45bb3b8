//! Exec streaming as kubectl exec reaches it through kubelet: the CRI Exec call returns a URL
//! on containerd's streaming server, which speaks Kubernetes' channel protocol over a
//! WebSocket (`v4.channel.k8s.io`): every binary message starts with its channel byte —
//! 0 stdin, 1 stdout, 2 stderr, 3 the final status (JSON), 4 terminal resize.

use anyhow::{bail, Context, Result};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

pub struct Session {
    pub stdout: String,
    pub stderr: String,
    /// The v4 status object: {"status":"Success"} or a Failure with the exit code.
    pub status: serde_json::Value,
}

impl Session {
    /// The exit code the status carries (0 for Success).
    pub fn exit_code(&self) -> Result<i32> {
        match self.status["status"].as_str() {
            Some("Success") => Ok(0),
            Some("Failure") => {
                let causes = self.status["details"]["causes"]
                    .as_array()
                    .with_context(|| format!("failure status without causes: {}", self.status))?;
                causes
                    .iter()
                    .find(|c| c["reason"] == "ExitCode")
                    .and_then(|c| c["message"].as_str())
                    .and_then(|m| m.parse().ok())
                    .with_context(|| {
                        format!("failure status without an exit code: {}", self.status)
                    })
            }
            _ => bail!("unexpected exec status {}", self.status),
        }
    }
}

/// Connects to `url`, sends `stdin` on channel 0 and collects everything until the server
/// closes the session. Blocking: run it off the async runtime.
pub fn exec(url: &str, stdin: &[u8]) -> Result<Session> {
    let ws_url = url
        .strip_prefix("http://")
        .map(|rest| format!("ws://{rest}"))
        .with_context(|| format!("streaming URL {url:?} is not http://"))?;
    let authority = ws_url["ws://".len()..]
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let tcp = TcpStream::connect(&authority).with_context(|| format!("connect {authority}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = ws_url.as_str().into_client_request()?;
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "v4.channel.k8s.io".parse()?);
    let (mut ws, resp) =
        tungstenite::client(req, tcp).with_context(|| format!("WebSocket handshake with {url}"))?;
    let proto = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if proto != "v4.channel.k8s.io" {
        bail!("streaming server chose protocol {proto:?}, not v4.channel.k8s.io");
    }
    let mut msg = vec![0u8];
    msg.extend_from_slice(stdin);
    ws.send(Message::binary(msg)).context("send stdin")?;

    let (mut stdout, mut stderr, mut status) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        match ws.read() {
            Ok(Message::Binary(b)) => match b.split_first() {
                Some((1, rest)) => stdout.extend_from_slice(rest),
                Some((2, rest)) => stderr.extend_from_slice(rest),
                Some((3, rest)) => status.extend_from_slice(rest),
                Some((c, _)) => bail!("message on unexpected channel {c}"),
                None => {}
            },
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) | Err(tungstenite::Error::AlreadyClosed) => {
                break
            }
            Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )) => break,
            Err(e) => return Err(e).context("read from the streaming server"),
        }
    }
    if status.is_empty() {
        bail!(
            "session ended without a status (stdout {:?}, stderr {:?})",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    }
    Ok(Session {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        status: serde_json::from_slice(&status).context("exec status is not JSON")?,
    })
}

//! The console socket: a unix socket that receives the pseudo-terminal master a runtime
//! passes (SCM_RIGHTS) for `process.terminal: true`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

pub struct Receiver {
    rx: mpsc::Receiver<Result<OwnedFd, String>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    pub fn listen(path: &Path) -> Result<Receiver, String> {
        let listener = UnixListener::bind(path)
            .map_err(|e| format!("console socket {}: {e}", path.display()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("console socket: {e}"))?;
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = tx.send(
                            crate::sys::recv_fd(stream.as_raw_fd())
                                .map_err(|e| format!("recvmsg on the console socket: errno {e}")),
                        );
                        return;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("accept on the console socket: {e}")));
                        return;
                    }
                }
            }
        });
        Ok(Receiver { rx, stop })
    }

    /// The master, once the runtime sent it (create has returned by then, so a short wait).
    pub fn take(&self, timeout: Duration) -> Result<OwnedFd, String> {
        self.rx
            .recv_timeout(timeout)
            .map_err(|_| "no pseudo-terminal master arrived on the console socket".to_string())?
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

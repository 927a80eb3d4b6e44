//! In-process HTTP receivers on 127.0.0.1:0 that capture what they accept
//! and can be switched "down" (answering 503) and back.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Captured {
    pub path: String,
    pub headers: HeaderMap,
    /// Decompressed according to Content-Encoding.
    pub body: Vec<u8>,
}

pub type Responder = Arc<dyn Fn(&Captured) -> (u16, Vec<u8>) + Send + Sync>;

pub struct ReceiverState {
    /// 0: up; otherwise the status every request gets.
    pub down_status: AtomicU16,
    /// Sent as `Retry-After` (seconds) with the down status, when set.
    pub down_retry_after: Mutex<Option<u64>>,
    pub attempts: AtomicU64,
    pub accepted: Mutex<Vec<Captured>>,
    pub responder: Mutex<Responder>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start(ok_status: u16) -> Self {
        Self::start_on(ok_status, 0).await
    }

    /// On this port of 127.0.0.1 (0: any free one).
    pub async fn start_on(ok_status: u16, port: u16) -> Self {
        let responder: Responder = Arc::new(move |_| (ok_status, Vec::new()));
        let state = Arc::new(ReceiverState {
            down_status: AtomicU16::new(0),
            down_retry_after: Mutex::new(None),
            attempts: AtomicU64::new(0),
            accepted: Mutex::new(Vec::new()),
            responder: Mutex::new(responder),
        });
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_down(&self, status: u16) {
        self.state.down_status.store(status, Ordering::SeqCst);
    }

    /// Down with `status` and a `Retry-After` of `seconds`.
    pub fn set_down_retry_after(&self, status: u16, seconds: u64) {
        *self.state.down_retry_after.lock().unwrap() = Some(seconds);
        self.set_down(status);
    }

    pub fn set_up(&self) {
        self.state.down_status.store(0, Ordering::SeqCst);
    }

    pub fn set_responder(&self, r: Responder) {
        *self.state.responder.lock().unwrap() = r;
    }

    pub fn attempts(&self) -> u64 {
        self.state.attempts.load(Ordering::SeqCst)
    }

    pub fn accepted(&self) -> Vec<Captured> {
        self.state.accepted.lock().unwrap().clone()
    }
}

async fn handle(State(s): State<Arc<ReceiverState>>, uri: Uri, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    s.attempts.fetch_add(1, Ordering::SeqCst);
    let down = s.down_status.load(Ordering::SeqCst);
    if down != 0 {
        let mut headers = HeaderMap::new();
        if let Some(seconds) = *s.down_retry_after.lock().unwrap() {
            headers.insert("retry-after", seconds.into());
        }
        return (StatusCode::from_u16(down).unwrap(), headers, b"down for the test".to_vec());
    }
    let body = match headers.get("content-encoding").and_then(|v| v.to_str().ok()) {
        Some("snappy") => snap::raw::Decoder::new().decompress_vec(&body).expect("valid snappy"),
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out).expect("valid gzip");
            out
        }
        None => body.to_vec(),
        Some(other) => panic!("unexpected content-encoding {other}"),
    };
    let captured = Captured { path: uri.path().to_string(), headers, body };
    let responder = s.responder.lock().unwrap().clone();
    let (status, resp) = responder(&captured);
    if (200..300).contains(&status) {
        s.accepted.lock().unwrap().push(captured);
    }
    (StatusCode::from_u16(status).unwrap(), HeaderMap::new(), resp)
}

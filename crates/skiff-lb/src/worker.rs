//! The proxy's worker threads: one current-thread Tokio runtime per worker, each accepting on its own
//! `SO_REUSEPORT` socket of every listener, so a connection, its requests and the upstream connections they
//! use stay on one thread (no cross-thread wake-ups, no shared run queue). Background work (health checks,
//! draining) runs on worker 0.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;

use tokio::runtime::{EnterGuard, Handle};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

thread_local! {
    /// This thread's worker index (0 on threads that are not workers).
    static WORKER_INDEX: Cell<usize> = const { Cell::new(0) };
}

/// The index of the worker running the caller (0 outside workers): selects per-worker state.
pub(crate) fn current_index() -> usize {
    WORKER_INDEX.with(Cell::get)
}

pub(crate) struct Workers {
    workers: Vec<Worker>,
}

struct Worker {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
}

impl Workers {
    /// Starts `count` workers (0: one per available core). Starts none when the threads cannot be created:
    /// everything then runs on the caller's runtime.
    pub fn start(count: usize) -> Self {
        let count = if count == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { count };
        let mut workers = Vec::with_capacity(count);
        for index in 0..count {
            match start_worker(index) {
                Ok(w) => workers.push(w),
                Err(_) => break,
            }
        }
        Workers { workers }
    }

    /// How many per-worker slots shared state needs (at least 1).
    pub fn slots(&self) -> usize {
        self.workers.len().max(1)
    }

    /// How many listening sockets each listener gets: one per worker.
    pub fn sockets_per_listener(&self) -> usize {
        self.workers.len().max(1)
    }

    /// Makes `tokio::spawn` place tasks on worker 0 (background tasks) until the guard drops; `None` without
    /// workers (the caller's runtime is used).
    pub fn enter(&self) -> Option<EnterGuard<'_>> {
        self.workers.first().map(|w| w.handle.enter())
    }

    /// Runs `fut` on worker `index` (on the caller's runtime without workers).
    pub fn spawn_on<F>(&self, index: usize, fut: F) -> AbortHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self.workers.get(index) {
            Some(w) => w.handle.spawn(fut).abort_handle(),
            None => tokio::spawn(fut).abort_handle(),
        }
    }
}

impl Drop for Workers {
    /// Stops every worker: its runtime drops its tasks (accept loops, connections) and the thread ends.
    fn drop(&mut self) {
        for w in &mut self.workers {
            if let Some(stop) = w.stop.take() {
                let _ = stop.send(());
            }
        }
    }
}

fn start_worker(index: usize) -> std::io::Result<Worker> {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::Builder::new().name(format!("skiff-lb-{index}")).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                let _ = handle_tx.send(Err(e));
                return;
            }
        };
        WORKER_INDEX.with(|i| i.set(index));
        let _ = handle_tx.send(Ok(rt.handle().clone()));
        rt.block_on(async {
            let _ = stopped.await;
        });
    })?;
    let handle = handle_rx.recv().map_err(|_| std::io::Error::other("worker thread exited at start"))??;
    Ok(Worker { handle, stop: Some(stop) })
}

/// Binds `count` listening sockets to `addr` (the same port for all, also when `addr` asks for port 0), with
/// `SO_REUSEPORT` when there are several so the kernel spreads connections over them. All or none. The first
/// binds without `SO_REUSEPORT` (set right after, before it listens): an address another socket holds fails
/// to bind as it would for a single socket, even when that socket allows port reuse itself.
pub(crate) fn bind_listener(addr: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let count = count.max(1);
    let mut sockets = Vec::with_capacity(count);
    let mut at = addr;
    for i in 0..count {
        let socket = if at.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        if i > 0 {
            socket.set_reuseport(true)?;
        }
        socket.bind(at)?;
        if i == 0 && count > 1 {
            socket.set_reuseport(true)?;
        }
        // Registers with the runtime entered (worker 0's) only until `into_std` takes it back.
        let listener = socket.listen(1024)?;
        at = listener.local_addr()?;
        sockets.push(listener.into_std()?);
    }
    Ok(sockets)
}

//! Container exits as events: one inotify instance for the whole agent watches the exit directory of every
//! container a task runs, and wakes that task the moment conmon records an exit — rather than at its next
//! poll.
//!
//! conmon (2.1) writes `exits/<container-id>` with GLib's `g_file_set_contents`: a temporary file
//! `<container-id>.XXXXXX` in the same directory, written, closed, then renamed into place. The exit file
//! therefore appears complete with `IN_MOVED_TO` named after the container; `IN_CLOSE_WRITE` of the same name
//! covers a monitor that writes the file in place. Events for the temporary file are ignored.
//!
//! One instance per agent, not per task: `fs.inotify.max_user_instances` is 128 on Debian while a node runs
//! hundreds of tasks; watches (`max_user_watches`, hundreds of thousands) are plentiful. The instance's fd is
//! registered with tokio ([`AsyncFd`]) and read by one background task.
//!
//! Events only hurry the task's poll along, they never replace it: a task still polls (health checks, OOM,
//! an event lost to a queue overflow or to a watch that could not be added), and a watcher that cannot be
//! created (no inotify, instances exhausted) logs a warning and leaves the tasks to polling alone.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rustix::fs::inotify;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// What is watched: the exit directory's event that means "the exit file is complete".
fn watch_flags() -> inotify::WatchFlags {
    inotify::WatchFlags::MOVED_TO | inotify::WatchFlags::CLOSE_WRITE | inotify::WatchFlags::ONLYDIR
}

/// The agent's inotify instance and what each of its watches wakes.
pub struct ExitWatcher {
    /// `None`: polling alone (inotify unavailable, or disabled).
    shared: Option<Arc<Shared>>,
    reader: Option<tokio::task::AbortHandle>,
}

struct Shared {
    fd: AsyncFd<OwnedFd>,
    table: Mutex<Table>,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Watch descriptor → the container whose exit directory it watches and who waits on it.
#[derive(Default)]
struct Table {
    watches: HashMap<i32, Watched>,
    next_token: u64,
}

struct Watched {
    container: String,
    /// (token of the [`ExitWatch`] holding it, its wake-up). A container watched twice (the kernel returns
    /// the same descriptor for the same directory) has two subscribers; the watch goes with the last.
    subscribers: Vec<(u64, Arc<Notify>)>,
}

impl Watched {
    fn wake(&self) {
        for (_, n) in &self.subscribers {
            n.notify_one();
        }
    }
}

impl std::fmt::Debug for ExitWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExitWatcher").field("active", &self.is_active()).field("watches", &self.watches()).finish()
    }
}

impl ExitWatcher {
    /// Creates the inotify instance and its reader task. Must be called inside a tokio runtime with I/O
    /// enabled. Never fails: without inotify the watcher is inactive (a warning is logged) and tasks poll.
    pub fn open() -> ExitWatcher {
        match Self::try_open() {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch container exits with inotify; tasks poll for exits alone");
                ExitWatcher::disabled()
            }
        }
    }

    /// A watcher that watches nothing: tasks find exits by polling alone.
    pub fn disabled() -> ExitWatcher {
        ExitWatcher { shared: None, reader: None }
    }

    fn try_open() -> std::io::Result<ExitWatcher> {
        tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        // SAFETY: the `OwnedFd` is moved into the `AsyncFd` and owned by it: the descriptor stays open and the
        // same inotify instance until the `AsyncFd` is dropped (nothing takes it out through `get_mut` or
        // `into_inner`), and `as_raw_fd` of an `OwnedFd` always returns that descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }?;
        let shared = Arc::new(Shared { fd, table: Mutex::new(Table::default()) });
        let reader = tokio::spawn(read_events(shared.clone())).abort_handle();
        Ok(ExitWatcher { shared: Some(shared), reader: Some(reader) })
    }

    /// Whether exits are signalled (false: polling alone).
    pub fn is_active(&self) -> bool {
        self.shared.is_some()
    }

    /// How many exit directories are watched now.
    pub fn watches(&self) -> usize {
        self.shared.as_ref().map_or(0, |s| s.table().watches.len())
    }

    /// Wakes `wake` whenever container `container_id` exits: its exit file appears in `exit_dir`. The watch
    /// lasts as long as the returned [`ExitWatch`]. `wake` is also woken once right away, so that an exit
    /// before the watch existed is looked at. `None` (logged) when the watch could not be added: the caller's
    /// poll finds the exit.
    pub fn watch(&self, container_id: &str, exit_dir: &Path, wake: &Arc<Notify>) -> Option<ExitWatch> {
        let shared = self.shared.as_ref()?;
        let watch = {
            // Added under the lock, so the reader never sees an event of a descriptor not yet in the table.
            let mut table = shared.table();
            match inotify::add_watch(shared.fd.get_ref(), exit_dir, watch_flags()) {
                Ok(wd) => {
                    let token = table.next_token;
                    table.next_token += 1;
                    let watched = table
                        .watches
                        .entry(wd)
                        .or_insert_with(|| Watched { container: container_id.to_string(), subscribers: vec![] });
                    watched.container = container_id.to_string();
                    watched.subscribers.push((token, wake.clone()));
                    Some(ExitWatch { shared: shared.clone(), wd, token })
                }
                Err(e) => {
                    tracing::warn!(container = %container_id, path = %exit_dir.display(), error = %e,
                        "cannot watch the container's exit directory; its exit is found by polling");
                    None
                }
            }
        };
        wake.notify_one();
        watch
    }
}

impl Drop for ExitWatcher {
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
    }
}

/// A watch of one container's exit directory; dropping it removes the watch.
#[must_use = "the watch is removed when this is dropped"]
pub struct ExitWatch {
    shared: Arc<Shared>,
    wd: i32,
    token: u64,
}

impl std::fmt::Debug for ExitWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExitWatch").field("wd", &self.wd).finish()
    }
}

impl Drop for ExitWatch {
    fn drop(&mut self) {
        let mut table = self.shared.table();
        let Some(watched) = table.watches.get_mut(&self.wd) else {
            // The kernel dropped the watch already (the directory was removed: IN_IGNORED).
            return;
        };
        watched.subscribers.retain(|(t, _)| *t != self.token);
        if watched.subscribers.is_empty() {
            table.watches.remove(&self.wd);
            // EINVAL: the directory went away meanwhile and the kernel removed the watch itself.
            if let Err(e) = inotify::remove_watch(self.shared.fd.get_ref(), self.wd) {
                if e != rustix::io::Errno::INVAL {
                    tracing::warn!(wd = self.wd, error = %e, "removing an exit watch failed");
                }
            }
        }
    }
}

/// The reader task: drains the instance whenever it is readable and wakes whoever waits on the event's
/// container. Ends (leaving tasks to polling) only on an unexpected read error.
async fn read_events(shared: Arc<Shared>) {
    // Room for many events per read (each is 16 bytes plus a padded name).
    let mut buf = vec![MaybeUninit::<u8>::uninit(); 16 << 10];
    loop {
        let mut ready = match shared.fd.readable().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "the container exit watcher stopped; tasks poll for exits alone");
                return;
            }
        };
        let mut events = inotify::Reader::new(shared.fd.get_ref(), &mut buf);
        loop {
            match events.next() {
                Ok(event) => dispatch(&mut shared.table(), event.wd(), event.events(), event.file_name()),
                Err(rustix::io::Errno::AGAIN) => {
                    ready.clear_ready();
                    break;
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "reading container exit events failed; tasks poll for exits alone");
                    return;
                }
            }
        }
    }
}

/// One event: wake the waiters of the container it names (all of them after a queue overflow).
fn dispatch(table: &mut Table, wd: i32, flags: inotify::ReadFlags, name: Option<&std::ffi::CStr>) {
    if flags.contains(inotify::ReadFlags::QUEUE_OVERFLOW) {
        // Events were lost: everyone looks.
        table.watches.values().for_each(Watched::wake);
        return;
    }
    if flags.contains(inotify::ReadFlags::IGNORED) {
        // The watch is gone (removed by us, or its directory was deleted): whoever still waits looks.
        if let Some(w) = table.watches.remove(&wd) {
            w.wake();
        }
        return;
    }
    let Some(watched) = table.watches.get(&wd) else { return };
    if name.is_some_and(|n| n.to_bytes() == watched.container.as_bytes()) {
        watched.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn woken(n: &Notify) -> bool {
        tokio::time::timeout(Duration::from_secs(5), n.notified()).await.is_ok()
    }

    async fn not_woken(n: &Notify) -> bool {
        tokio::time::timeout(Duration::from_millis(200), n.notified()).await.is_err()
    }

    /// conmon's way: a temporary file renamed into place.
    fn write_like_conmon(dir: &Path, id: &str, status: &str) {
        let tmp = dir.join(format!("{id}.AB12CD"));
        std::fs::write(&tmp, status).expect("write temporary exit file");
        std::fs::rename(&tmp, dir.join(id)).expect("rename exit file");
    }

    #[tokio::test]
    async fn an_exit_file_renamed_into_place_wakes_its_container_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).expect("mkdir");
        std::fs::create_dir_all(&b).expect("mkdir");
        let w = ExitWatcher::open();
        assert!(w.is_active(), "inotify is available on the test machine");
        let (wake_a, wake_b) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let watch_a = w.watch("task-0", &a, &wake_a).expect("watch a");
        let watch_b = w.watch("task-1", &b, &wake_b).expect("watch b");
        assert_eq!(w.watches(), 2);
        // Adding a watch wakes once (an exit before the watch must be looked at).
        assert!(woken(&wake_a).await && woken(&wake_b).await);

        // The temporary file alone (created, written, closed) wakes nobody.
        std::fs::write(a.join("task-0.XYZ123"), "0").expect("write");
        assert!(not_woken(&wake_a).await, "a temporary file woke the task");
        std::fs::remove_file(a.join("task-0.XYZ123")).expect("rm");

        write_like_conmon(&a, "task-0", "137");
        assert!(woken(&wake_a).await, "the exit file did not wake its task");
        assert!(not_woken(&wake_b).await, "another container's exit woke this task");

        // Written in place (close after write) wakes too.
        std::fs::write(b.join("task-1"), "0").expect("write");
        assert!(woken(&wake_b).await);

        drop(watch_a);
        drop(watch_b);
        assert_eq!(w.watches(), 0);
    }

    #[tokio::test]
    async fn watches_of_the_same_directory_share_it_until_the_last_goes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let w = ExitWatcher::open();
        let (n1, n2) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let first = w.watch("c-0", dir.path(), &n1).expect("watch");
        let second = w.watch("c-0", dir.path(), &n2).expect("watch");
        assert_eq!(w.watches(), 1);
        assert!(woken(&n1).await && woken(&n2).await);
        drop(first);
        assert_eq!(w.watches(), 1);
        write_like_conmon(dir.path(), "c-0", "0");
        assert!(woken(&n2).await, "the remaining watch no longer wakes");
        drop(second);
        assert_eq!(w.watches(), 0);
    }

    #[tokio::test]
    async fn a_removed_directory_drops_its_watch_and_wakes_the_waiter() {
        let dir = tempfile::tempdir().expect("temp dir");
        let exits = dir.path().join("exits");
        std::fs::create_dir_all(&exits).expect("mkdir");
        let w = ExitWatcher::open();
        let n = Arc::new(Notify::new());
        let watch = w.watch("c-0", &exits, &n).expect("watch");
        assert!(woken(&n).await);
        std::fs::remove_dir(&exits).expect("rmdir");
        assert!(woken(&n).await, "the removal did not wake the waiter");
        tokio::time::timeout(Duration::from_secs(5), async {
            while w.watches() != 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the kernel's IN_IGNORED did not remove the watch from the table");
        drop(watch);
        assert_eq!(w.watches(), 0);
    }

    #[tokio::test]
    async fn a_missing_directory_or_a_disabled_watcher_leaves_polling_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let n = Arc::new(Notify::new());
        let w = ExitWatcher::open();
        assert!(w.watch("c-0", &dir.path().join("nope"), &n).is_none());
        let off = ExitWatcher::disabled();
        assert!(!off.is_active());
        assert!(off.watch("c-0", dir.path(), &n).is_none());
        assert_eq!(w.watches() + off.watches(), 0);
    }
}

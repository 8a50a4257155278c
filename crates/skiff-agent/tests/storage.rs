//! Task storage against the real kernel: a loop-backed btrfs image per test (in a temp dir), subvolumes
//! with quota limits, overlay mounts inside them. Needs root and mkfs.btrfs (skips otherwise). A guard
//! unmounts and detaches whatever a test left, even when it fails.
//!
//! Run: `cargo test -p skiff-agent --test storage -- --nocapture` (prints the measured per-task costs).

use skiff_agent::storage::{is_out_of_space, StorageConfig, StorageError, TaskStorage};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// A test's temp dir and storage; dropping it removes every mount and loop device under the temp dir.
struct Env {
    storage: Option<TaskStorage>,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Option<Env> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipping: task storage tests need root (loop devices, mounts)");
            return None;
        }
        if std::process::Command::new("mkfs.btrfs").arg("--version").output().is_err() {
            eprintln!("skipping: mkfs.btrfs missing (apt-get install btrfs-progs)");
            return None;
        }
        let dir = tempfile::Builder::new().prefix("skiff-storage-test").tempdir().expect("temp dir");
        let mut env = Env { storage: None, dir };
        env.storage = Some(TaskStorage::open(env.config()).expect("open"));
        Some(env)
    }

    fn config(&self) -> StorageConfig {
        StorageConfig { image_size: Some(8 << 30), ..StorageConfig::new(self.state_dir()) }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn storage(&self) -> &TaskStorage {
        self.storage.as_ref().expect("open")
    }

    /// The image path as sysfs reports a loop device's backing file.
    fn image(&self) -> PathBuf {
        std::fs::canonicalize(self.state_dir()).expect("state dir").join("storage.img")
    }

    /// Closes and reopens, as an agent restart would (the mount stays).
    fn reopen(&mut self) {
        drop(self.storage.take());
        self.storage = Some(TaskStorage::open(self.config()).expect("reopen"));
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(storage) = self.storage.take() {
            if let Ok(ids) = storage.list() {
                for id in ids {
                    let _ = storage.remove(&id);
                }
            }
            let _ = storage.unmount();
        }
        // Whatever is left (a failed test): detach mounts under the temp dir, then its loop devices.
        let root = std::fs::canonicalize(self.dir.path()).unwrap_or_else(|_| self.dir.path().to_path_buf());
        let mut points = mounts_under(&root);
        points.reverse();
        for point in points {
            let _ = rustix::mount::unmount(&point, rustix::mount::UnmountFlags::DETACH);
        }
        for (dev, _) in loops_under(&root) {
            let _ = std::process::Command::new("losetup").arg("-d").arg(dev).status();
        }
    }
}

/// Mount points at or below `dir` in this process's mount table.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Loop devices whose backing file is below `dir`: (device, backing file).
fn loops_under(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/sys/block").expect("/sys/block").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Ok(file) = std::fs::read_to_string(entry.path().join("loop/backing_file")) {
            let file = PathBuf::from(file.trim_end());
            if file.starts_with(dir) {
                out.push((format!("/dev/{name}"), file));
            }
        }
    }
    out
}

fn task_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Appends 1 MiB chunks to `path` (each write followed by fsync every 4 MiB, so delayed allocation cannot
/// hide the limit) until a write fails, up to `max`. Returns the bytes written and the error.
fn fill(path: &Path, max: u64) -> (u64, Option<std::io::Error>) {
    // Creating a file needs metadata space too: a full task cannot even create one.
    let mut file = match std::fs::OpenOptions::new().create(true).append(true).open(path) {
        Ok(file) => file,
        Err(e) => return (0, Some(e)),
    };
    let chunk = vec![0xa5u8; MIB as usize];
    let mut written = 0u64;
    while written < max {
        match file.write(&chunk) {
            Ok(n) => written += n as u64,
            Err(e) => return (written, Some(e)),
        }
        if written & (4 * MIB - 1) == 0 {
            if let Err(e) = file.sync_data() {
                return (written, Some(e));
            }
        }
    }
    match file.sync_all() {
        Ok(()) => (written, None),
        Err(e) => (written, Some(e)),
    }
}

/// Bytes allocated to the files below `dir` (like `du`).
fn allocated(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let meta = entry.metadata().expect("stat");
        total += meta.blocks() * 512;
        if meta.is_dir() {
            total += allocated(&entry.path());
        }
    }
    total
}

fn errno(e: &std::io::Error) -> String {
    let code = e.raw_os_error().unwrap_or(0);
    format!("{} ({e})", rustix::io::Errno::from_raw_os_error(code))
}

fn assert_quota_error(e: &std::io::Error) {
    assert_eq!(e.raw_os_error(), Some(rustix::io::Errno::DQUOT.raw_os_error()), "unexpected error {e}");
    assert!(is_out_of_space(e));
}

#[test]
fn writes_past_the_limit_fail_and_usage_stays_near_it() {
    let Some(env) = Env::new() else { return };
    let s = env.storage();
    let id = task_id();
    let dir = s.create(&id, 64 * MIB).expect("create");
    assert_eq!(dir, s.path(&id).unwrap());
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "fresh dir is empty");

    std::fs::create_dir(dir.join("volume")).unwrap();
    let (written, err) = fill(&dir.join("volume/big"), 256 * MIB);
    let err = err.expect("a write past 64 MiB must fail");
    eprintln!("write past a 64 MiB limit: failed after {} MiB with {}", written / MIB, errno(&err));
    assert_quota_error(&err);
    assert!((48 * MIB..=64 * MIB).contains(&written), "wrote {written} bytes");
    let used = allocated(&dir);
    assert!(used <= 66 * MIB, "allocated {used} bytes");

    // A second file gets nothing more; freeing space makes room again.
    let (more, err) = fill(&dir.join("volume/more"), 8 * MIB);
    assert!(more <= 2 * MIB, "wrote {more} more bytes");
    assert_quota_error(&err.expect("still full"));
    std::fs::remove_file(dir.join("volume/big")).unwrap();
    rustix::fs::syncfs(std::fs::File::open(&dir).unwrap()).unwrap();
    let (again, err) = fill(&dir.join("volume/again"), 16 * MIB);
    assert!(err.is_none(), "after freeing: {err:?}");
    assert_eq!(again, 16 * MIB);
    s.remove(&id).expect("remove");
}

#[test]
fn overlay_inside_is_capped_and_removed_with_the_task() {
    let Some(env) = Env::new() else { return };
    let s = env.storage();
    // The lower directory lives on the host filesystem (the temp dir), like the image store's layers.
    let lower = env.dir.path().join("lower");
    std::fs::create_dir_all(lower.join("etc")).unwrap();
    std::fs::write(lower.join("etc/hello"), b"from the image\n").unwrap();
    std::fs::write(lower.join("blob"), vec![1u8; 4 * MIB as usize]).unwrap();

    let id = task_id();
    let dir = s.create(&id, 64 * MIB).expect("create");
    let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
    for d in [&upper, &work, &merged] {
        std::fs::create_dir(d).unwrap();
    }
    let data = format!("lowerdir={},upperdir={},workdir={}", lower.display(), upper.display(), work.display());
    let data = std::ffi::CString::new(data).unwrap();
    rustix::mount::mount("overlay", &merged, "overlay", rustix::mount::MountFlags::empty(), data.as_c_str())
        .expect("overlay mount with upper/work in task storage");

    assert_eq!(std::fs::read_to_string(merged.join("etc/hello")).unwrap(), "from the image\n");
    // Copy-up of a lower file lands in the upper dir and counts against the limit.
    std::fs::OpenOptions::new().append(true).open(merged.join("blob")).unwrap().write_all(b"x").unwrap();
    assert!(upper.join("blob").exists());
    let (written, err) = fill(&merged.join("big"), 256 * MIB);
    let err = err.expect("a write through the overlay past 64 MiB must fail");
    eprintln!("write through overlay past a 64 MiB limit: failed after {} MiB with {}", written / MIB, errno(&err));
    assert_quota_error(&err);
    assert!((40 * MIB..=60 * MIB).contains(&written), "wrote {written} bytes");
    assert!(allocated(&upper) <= 66 * MIB);
    assert!(std::fs::metadata(lower.join("blob")).unwrap().len() == 4 * MIB, "lower untouched");

    // remove detaches the overlay still mounted inside.
    let root = std::fs::canonicalize(env.dir.path()).unwrap();
    assert_eq!(mounts_under(&root.join("state/mnt/tasks")).len(), 1);
    s.remove(&id).expect("remove with the overlay still mounted");
    assert!(mounts_under(&root.join("state/mnt/tasks")).is_empty());
    assert!(!dir.exists());
}

#[test]
fn tasks_are_independent() {
    let Some(env) = Env::new() else { return };
    let s = env.storage();
    let (a, b) = (task_id(), task_id());
    let dir_a = s.create(&a, 32 * MIB).expect("create a");
    let dir_b = s.create(&b, 96 * MIB).expect("create b");
    let (wa, ea) = fill(&dir_a.join("f"), 256 * MIB);
    assert_quota_error(&ea.expect("a is full"));
    assert!(wa <= 32 * MIB);
    // b still has its own 96 MiB.
    let (wb, eb) = fill(&dir_b.join("f"), 80 * MIB);
    assert!(eb.is_none(), "b: {eb:?}");
    assert_eq!(wb, 80 * MIB);
    s.remove(&a).expect("remove a");
    assert!(!dir_a.exists());
    assert_eq!(std::fs::metadata(dir_b.join("f")).unwrap().len(), 80 * MIB);
    assert_eq!(s.list().unwrap(), vec![b.clone()]);
    s.remove(&b).expect("remove b");
}

#[test]
fn restart_adopts_tasks_and_remove_frees_everything() {
    let Some(mut env) = Env::new() else { return };
    let (a, b) = (task_id(), task_id());
    let dir_a = env.storage().create(&a, 64 * MIB).unwrap();
    env.storage().create(&b, 64 * MIB).unwrap();
    std::fs::write(dir_a.join("kept"), b"across restarts").unwrap();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();

    // An agent restart: the mount stays, open adopts it (no second loop device).
    env.reopen();
    assert_eq!(env.storage().list().unwrap(), expected);
    let loops = loops_under(&std::fs::canonicalize(env.dir.path()).unwrap());
    assert_eq!(loops.len(), 1, "one loop device: {loops:?}");
    assert_eq!(loops[0].1, env.image());
    let dev = loops[0].0.trim_start_matches("/dev/");
    let dio = std::fs::read_to_string(format!("/sys/block/{dev}/loop/dio")).unwrap_or_default();
    eprintln!("loop device {dev}: direct I/O {}", dio.trim());
    assert_eq!(std::fs::read(dir_a.join("kept")).unwrap(), b"across restarts");
    // Limits survive too.
    let (_, err) = fill(&dir_a.join("big"), 256 * MIB);
    assert_quota_error(&err.expect("limit kept"));

    // A reboot: nothing mounted, open re-attaches the image.
    let storage = env.storage.take().unwrap();
    storage.unmount().expect("unmount");
    env.storage = Some(TaskStorage::open(env.config()).expect("open after unmount"));
    assert_eq!(env.storage().list().unwrap(), expected);
    assert_eq!(std::fs::read(dir_a.join("kept")).unwrap(), b"across restarts");

    // The space of removed tasks comes back (the cleaner runs after a commit).
    let s = env.storage();
    let before = used_bytes(s.mount_point());
    s.remove(&a).expect("remove a");
    s.remove(&a).expect("remove is idempotent");
    s.remove(&b).expect("remove b");
    assert!(s.list().unwrap().is_empty());
    assert!(!dir_a.exists());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // BTRFS_IOC_SYNC commits and wakes the cleaner (otherwise it runs within the 30 s commit interval).
        let sync = std::process::Command::new("btrfs").args(["filesystem", "sync"]).arg(s.mount_point()).output();
        assert!(sync.map(|o| o.status.success()).unwrap_or(false), "btrfs filesystem sync");
        let now = used_bytes(s.mount_point());
        if now + 48 * MIB <= before {
            break;
        }
        assert!(Instant::now() < deadline, "space not freed: {before} → {now} bytes used");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Unmounting the node's storage leaves no mount and no loop device behind.
    let root = std::fs::canonicalize(env.dir.path()).unwrap();
    assert_eq!(mounts_under(&root).len(), 1);
    assert_eq!(loops_under(&root).len(), 1);
    env.storage.take().unwrap().unmount().expect("unmount");
    assert!(mounts_under(&root).is_empty(), "mounts left: {:?}", mounts_under(&root));
    assert!(loops_under(&root).is_empty(), "loop devices left: {:?}", loops_under(&root));
}

#[test]
fn reopening_with_a_larger_image_grows_it() {
    let Some(mut env) = Env::new() else { return };
    let total = |s: &TaskStorage| {
        let st = rustix::fs::statvfs(s.mount_point()).unwrap();
        st.f_blocks * st.f_frsize
    };
    let id = task_id();
    env.storage().create(&id, 64 * MIB).unwrap();
    let before = total(env.storage());
    assert!(before <= 8 << 30);
    drop(env.storage.take());
    let config = StorageConfig { image_size: Some(12 << 30), ..env.config() };
    env.storage = Some(TaskStorage::open(config.clone()).expect("grow while mounted"));
    let after = total(env.storage());
    assert!(after > before + (3 << 30), "{before} → {after}");
    assert_eq!(std::fs::metadata(env.image()).unwrap().len(), 12 << 30);
    // Opening again (or with a smaller size) changes nothing.
    drop(env.storage.take());
    env.storage = Some(TaskStorage::open(env.config()).expect("reopen"));
    assert_eq!(total(env.storage()), after);
    assert_eq!(env.storage().list().unwrap(), vec![id]);
}

fn used_bytes(path: &Path) -> u64 {
    let st = rustix::fs::statvfs(path).unwrap();
    (st.f_blocks - st.f_bfree) * st.f_frsize
}

#[test]
fn remove_deletes_subvolumes_a_task_nested_inside() {
    let Some(env) = Env::new() else { return };
    let s = env.storage();
    let id = task_id();
    let dir = s.create(&id, 64 * MIB).unwrap();
    std::fs::create_dir(dir.join("vol")).unwrap();
    for nested in ["vol/sub", "vol/sub/deeper"] {
        let out =
            std::process::Command::new("btrfs").args(["-q", "subvolume", "create"]).arg(dir.join(nested)).output();
        assert!(out.map(|o| o.status.success()).unwrap_or(false), "btrfs subvolume create {nested}");
    }
    std::fs::write(dir.join("vol/sub/deeper/file"), b"x").unwrap();
    s.remove(&id).expect("remove with nested subvolumes");
    assert!(!dir.exists());
}

#[test]
fn hostile_ids_and_bad_limits_are_rejected() {
    let Some(env) = Env::new() else { return };
    let s = env.storage();
    let valid = task_id();
    for bad in [
        "",
        ".",
        "..",
        "../../../../../../../../etc/passwd",
        "/etc",
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
        "0123456789abcdef/123456789abcdef",
        "0123456789abcdef\u{0}123456789abcdef",
        "0123456789abcdef 123456789abcdef",
        "tasks",
    ] {
        assert!(matches!(s.create(bad, 64 * MIB), Err(StorageError::InvalidTaskId(_))), "create {bad:?}");
        assert!(matches!(s.remove(bad), Err(StorageError::InvalidTaskId(_))), "remove {bad:?}");
        assert!(matches!(s.path(bad), Err(StorageError::InvalidTaskId(_))), "path {bad:?}");
    }
    assert!(matches!(s.create(&valid, 0), Err(StorageError::InvalidLimit { .. })));
    s.create(&valid, 64 * MIB).unwrap();
    assert!(matches!(s.create(&valid, 64 * MIB), Err(StorageError::Exists(_))));
    // Something that is not a task's directory is not listed.
    std::fs::create_dir(s.mount_point().join("tasks/not-a-task")).unwrap();
    assert_eq!(s.list().unwrap(), vec![valid.clone()]);
    s.remove(&valid).unwrap();
}

#[test]
fn create_and_remove_cost() {
    let t = Instant::now();
    let Some(mut env) = Env::new() else { return };
    let first = t.elapsed();
    let t = Instant::now();
    env.reopen();
    let adopt = t.elapsed();
    env.storage.take().unwrap().unmount().unwrap();
    let t = Instant::now();
    env.storage = Some(TaskStorage::open(env.config()).unwrap());
    let remount = t.elapsed();
    eprintln!(
        "node (once): open with mkfs.btrfs {first:?}; adopt a mounted image {adopt:?}; attach + mount {remount:?}"
    );
    let s = env.storage();
    let n = 200;
    let (mut create, mut remove) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let id = task_id();
        let t = Instant::now();
        let dir = s.create(&id, 20 << 30).unwrap();
        create.push(t.elapsed());
        // What a task start puts there: the overlay's directories and a little data.
        for d in ["upper", "work", "rootfs", "volumes"] {
            std::fs::create_dir(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("upper/file"), vec![i as u8; 64 * 1024]).unwrap();
        let t = Instant::now();
        s.remove(&id).unwrap();
        remove.push(t.elapsed());
    }
    let stats = |v: &mut Vec<Duration>| {
        v.sort();
        format!("median {:?}, p90 {:?}, max {:?}", v[v.len() / 2], v[v.len() * 9 / 10], v[v.len() - 1])
    };
    eprintln!("per task, {n} runs: create {}; remove {}", stats(&mut create), stats(&mut remove));
}

#[test]
fn an_image_deleted_under_its_mount_is_replaced_on_open() {
    // The data directory's image removed while its filesystem stayed mounted (`rm -rf` of a data directory
    // whose server was killed): opening again detaches the unreachable filesystem and starts a new one.
    let Some(mut env) = Env::new() else { return };
    let id = task_id();
    let dir = env.storage().create(&id, 64 << 20).expect("create");
    std::fs::write(dir.join("f"), b"x").expect("write");
    std::fs::remove_file(env.image()).expect("delete the image");
    drop(env.storage.take());
    env.storage = Some(TaskStorage::open(env.config()).expect("open after the image was deleted"));
    assert!(env.image().exists(), "a new image");
    assert_eq!(env.storage().list().expect("list"), Vec::<String>::new(), "nothing of the old filesystem");
    let again = env.storage().create(&id, 64 << 20).expect("the same id works again");
    std::fs::write(again.join("g"), b"y").expect("write");
    let mine = loops_under(&std::fs::canonicalize(env.dir.path()).expect("dir"));
    assert!(
        mine.iter().all(|(_, f)| !f.to_string_lossy().ends_with("(deleted)")),
        "the old loop device is gone: {mine:?}"
    );
}

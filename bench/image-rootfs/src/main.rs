//! `skiff-image-rootfs-bench`: the image store's warm path, for bench/image-pull.sh. Opens the image cache
//! of a data directory that already holds the image (`skiff images pull` put it there), then
//!
//! 1. pulls the reference again `--pulls` times (a tag is re-resolved with the registry; no layer moves),
//! 2. looks it up in the cache with no network and mounts its root filesystem, `--iterations` times, each
//!    into a new task directory, timing the lookup + `rootfs()` (a ready rootfs) and the `unmount()` apart.
//!
//! Prints one JSON object of milliseconds (medians, p99) on stdout. Needs root (overlayfs).

use anyhow::{bail, Context as _};
use clap::Parser;
use skiff_agent::images::{ImageStore, ImageStoreConfig, NoProgress, RegistryCredentials, StaticCredentials};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Parser)]
struct Args {
    /// The data directory whose image cache (DATA_DIR/agent/images) holds the image
    #[arg(long)]
    data_dir: PathBuf,
    /// The image reference, as it was pulled
    #[arg(long)]
    reference: String,
    /// Where the task directories go (one per iteration, removed by unmount)
    #[arg(long)]
    task_root: PathBuf,
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    #[arg(long, default_value_t = 5)]
    pulls: usize,
    /// Registry user name; the password is read from SKIFF_BENCH_REGISTRY_PASSWORD
    #[arg(long)]
    username: Option<String>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    serde_json::json!({
        "p50": percentile(&v, 50.0), "p99": percentile(&v, 99.0),
        "min": v.first().copied().unwrap_or(f64::NAN), "max": v.last().copied().unwrap_or(f64::NAN), "n": v.len(),
    })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let root = args.data_dir.join("agent").join("images");
    let store = ImageStore::open(ImageStoreConfig::new(&root))
        .with_context(|| format!("cannot open the image cache {}", root.display()))?;
    let creds = match args.username {
        Some(username) => {
            let password = std::env::var("SKIFF_BENCH_REGISTRY_PASSWORD")
                .context("--username needs SKIFF_BENCH_REGISTRY_PASSWORD")?;
            Some(RegistryCredentials::Basic { username, password })
        }
        None => None,
    };
    let creds = StaticCredentials(creds);

    let mut pulls = Vec::with_capacity(args.pulls);
    for _ in 0..args.pulls {
        let t = Instant::now();
        store.pull(&args.reference, &creds, &NoProgress).await.context("warm pull")?;
        pulls.push(ms(t));
    }

    std::fs::create_dir_all(&args.task_root)?;
    let (mut ready, mut unmount) = (Vec::new(), Vec::new());
    for i in 0..args.iterations {
        let task_dir = args.task_root.join(format!("task-{i}"));
        let t = Instant::now();
        let image = store.get(&args.reference).await?.context("the image is not in the cache")?;
        let rootfs = store.rootfs(&image, &task_dir).await.context("mount the root filesystem")?;
        ready.push(ms(t));
        if std::fs::read_dir(&rootfs.path)?.next().is_none() {
            bail!("the mounted root filesystem {} is empty", rootfs.path.display());
        }
        let t = Instant::now();
        rootfs.unmount().context("unmount the root filesystem")?;
        unmount.push(ms(t));
        let _ = std::fs::remove_dir(&task_dir);
    }
    let out = serde_json::json!({
        "warm_pull_ms": summary(pulls),
        "ready_rootfs_ms": summary(ready),
        "unmount_ms": summary(unmount),
    });
    println!("{out}");
    Ok(())
}

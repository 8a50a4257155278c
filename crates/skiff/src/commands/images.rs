//! `skiff images …`: the node's image cache (`skiff-agent`'s image store under `DATA_DIR/agent/images`),
//! worked on directly, not through the API: pull (with a progress bar), ls, rm.

use super::{print, print_json, OutputFormat};
use crate::table::Table;
use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use skiff_agent::images::{ImageStore, ImageStoreConfig, PullProgress, RegistryCredentials, StaticCredentials};
use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

/// Where the image cache lives and how registries are reached.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The data directory; the image cache is DATA_DIR/agent/images
    #[arg(long, global = true, env = "SKIFF_DATA_DIR", default_value = skiff_api::DEFAULT_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,

    /// A registry (HOST or HOST:PORT) to reach over plain http; repeatable. Loopback registries always are
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    pub insecure_registries: Vec<String>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Pull an image into the cache (for a Skiff registry: --username AWS --password-stdin with the output
    /// of `aws ecr get-login-password`)
    Pull {
        /// The image: NAME[:TAG] or NAME@sha256:…, normalised as Docker does (busybox → docker.io/library/busybox:latest)
        #[arg(value_name = "REF")]
        reference: String,
        /// Registry user name (with --password-stdin)
        #[arg(long, short = 'u', requires = "password_stdin")]
        username: Option<String>,
        /// Read the registry password (or token) from standard input
        #[arg(long, requires = "username")]
        password_stdin: bool,
    },
    /// List cached images with their references, size and last use
    #[command(visible_alias = "list")]
    Ls {
        /// Output format: a table, or JSON
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// Remove references (or every reference to a sha256:… manifest digest); layers go when no image uses them
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(required = true, value_name = "REF")]
        references: Vec<String>,
    },
}

pub fn run(args: StoreArgs, command: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let root = args.data_dir.join("agent").join("images");
        let config = ImageStoreConfig { insecure_registries: args.insecure_registries, ..ImageStoreConfig::new(&root) };
        let store =
            ImageStore::open(config).with_context(|| format!("cannot open the image cache {}", root.display()))?;
        match command {
            Command::Pull { reference, username, password_stdin } => {
                pull(&store, &reference, username, password_stdin).await
            }
            Command::Ls { output } => ls(&store, output),
            Command::Rm { references } => rm(&store, references).await,
        }
    })
}

async fn pull(
    store: &ImageStore,
    reference: &str,
    username: Option<String>,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let creds = match (username, password_stdin) {
        (Some(username), true) => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            if password.is_empty() {
                bail!("--password-stdin: standard input held no password");
            }
            Some(RegistryCredentials::Basic { username, password })
        }
        _ => None,
    };
    let started = Instant::now();
    let progress = Progress::new();
    let result = store.pull(reference, &StaticCredentials(creds), &progress).await;
    progress.finish();
    let image = result?;
    print(&format!(
        "pulled {} ({}): {} layers, {} in {:.1} s\n",
        image.reference,
        image.manifest_digest,
        image.layers.len(),
        human_bytes(image.size),
        started.elapsed().as_secs_f64()
    ))
}

fn ls(store: &ImageStore, output: OutputFormat) -> anyhow::Result<()> {
    let images = store.list()?;
    if output == OutputFormat::Json {
        let items: Vec<serde_json::Value> = images
            .iter()
            .map(|i| {
                serde_json::json!({
                    "references": i.references,
                    "manifestDigest": i.manifest_digest,
                    "configDigest": i.config_digest,
                    "layers": i.layers,
                    "size": i.size,
                    "lastUsed": rfc3339(i.last_used),
                })
            })
            .collect();
        return print_json(&serde_json::json!({ "images": items }));
    }
    let mut table = Table::new(&["REFERENCE", "DIGEST", "LAYERS", "SIZE", "LAST USED"]);
    for i in &images {
        let digest =
            i.manifest_digest.strip_prefix("sha256:").map(|h| &h[..12.min(h.len())]).unwrap_or(&i.manifest_digest);
        let refs = if i.references.is_empty() { vec!["<none>".to_string()] } else { i.references.clone() };
        for r in refs {
            table.row([r, digest.to_string(), i.layers.to_string(), human_bytes(i.size), rfc3339(i.last_used)]);
        }
    }
    print(&table.render())
}

async fn rm(store: &ImageStore, references: Vec<String>) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for r in &references {
        if store.remove(r).await? {
            print(&format!("removed {r}\n"))?;
        } else {
            missing.push(r.as_str());
        }
    }
    if !missing.is_empty() {
        bail!("not in the image cache: {}", missing.join(", "));
    }
    Ok(())
}

fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..12.min(hex.len())]
}

/// One bar for the whole pull (bytes of the layers being downloaded, layers done) on a terminal; a line
/// per layer event otherwise (logs, CI, pipes).
struct Progress {
    bar: Option<ProgressBar>,
    layers: Mutex<HashMap<String, (u64, u64)>>,
    done: Mutex<(usize, usize)>,
}

impl Progress {
    fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Progress { bar, layers: Mutex::new(HashMap::new()), done: Mutex::new((0, 0)) }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl PullProgress for Progress {
    fn layer_started(&self, digest: &str, size: u64) {
        if let Ok(mut l) = self.layers.lock() {
            l.insert(digest.to_string(), (size, 0));
        }
        if let Some(bar) = &self.bar {
            bar.inc_length(size);
        } else {
            self.line(format!("{}: downloading {}", short(digest), human_bytes(size)));
        }
    }

    fn layer_progress(&self, digest: &str, bytes: u64) {
        let delta = match self.layers.lock() {
            Ok(mut l) => match l.get_mut(digest) {
                Some(entry) => {
                    let d = bytes.saturating_sub(entry.1);
                    entry.1 = bytes;
                    d
                }
                None => 0,
            },
            Err(_) => 0,
        };
        if let Some(bar) = &self.bar {
            bar.inc(delta);
        }
    }

    fn layer_done(&self, digest: &str, cached: bool) {
        let (done, cached_count) = match self.done.lock() {
            Ok(mut d) => {
                d.0 += 1;
                if cached {
                    d.1 += 1;
                }
                *d
            }
            Err(_) => (0, 0),
        };
        let what = if cached { "already in the cache" } else { "pulled and unpacked" };
        match &self.bar {
            Some(bar) => bar.set_message(format!("{done} layers done ({cached_count} cached)")),
            None => self.line(format!("{}: {what}", short(digest))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn commands_parse() {
        let cli = crate::Cli::try_parse_from([
            "skiff",
            "images",
            "pull",
            "127.0.0.1:9400/web:v1",
            "--username",
            "AWS",
            "--password-stdin",
            "--insecure-registry",
            "reg.lan:5000",
            "--data-dir",
            "/tmp/x",
        ])
        .unwrap();
        let crate::Command::Images { store, command } = cli.command else { panic!("not images") };
        assert_eq!(store.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(store.insecure_registries, vec!["reg.lan:5000"]);
        assert!(matches!(command, Command::Pull { ref reference, username: Some(ref u), password_stdin: true }
            if reference == "127.0.0.1:9400/web:v1" && u == "AWS"));
        // A user name needs the password, and the other way round.
        assert!(crate::Cli::try_parse_from(["skiff", "images", "pull", "x", "--username", "u"]).is_err());
        assert!(crate::Cli::try_parse_from(["skiff", "images", "pull", "x", "--password-stdin"]).is_err());
        let cli = crate::Cli::try_parse_from(["skiff", "images", "ls", "-o", "json"]).unwrap();
        assert!(matches!(
            cli.command,
            crate::Command::Images { command: Command::Ls { output: OutputFormat::Json }, .. }
        ));
        assert!(crate::Cli::try_parse_from(["skiff", "images", "rm"]).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(200 << 20), "200.0 MiB");
        assert_eq!(short("sha256:0123456789abcdef"), "0123456789ab");
    }
}

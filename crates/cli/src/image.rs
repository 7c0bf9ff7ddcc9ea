//! `rkube image import|ls|rm`: the node's image store (the one the native runtime runs
//! containers from) from the command line. Works while an agent runs: the store locks its
//! index, and removal refuses images a container uses.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use rkube_images::ImageStore;

use crate::server::default_data_dir;

#[derive(clap::Subcommand, Debug)]
pub enum ImageCommand {
    /// Import images from OCI image-layout tarballs or `docker save` archives (gzip is fine).
    Import(ImportArgs),
    /// List images.
    #[command(alias = "list")]
    Ls(StoreArgs),
    /// Remove images (refused while a container uses them).
    Rm(RmArgs),
}

#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    /// Where rkube keeps its state (images are under <data-dir>/agent/images).
    #[arg(long, env = "RKUBE_DATA_DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Archives to import ("-" reads standard input).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Images by name, id or id prefix.
    #[arg(required = true)]
    images: Vec<String>,
}

fn open(args: &StoreArgs) -> Result<ImageStore> {
    let root = args.data_dir.join("agent").join("images");
    ImageStore::open(&root).with_context(|| format!("opening the image store {}", root.display()))
}

/// A size as `crictl images` prints it.
fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.3}GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.3}MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.3}kB", b / 1e3)
    } else {
        format!("{bytes}B")
    }
}

pub fn run(cmd: ImageCommand) -> Result<()> {
    match cmd {
        ImageCommand::Import(args) => {
            let store = open(&args.store)?;
            for f in &args.files {
                let start = std::time::Instant::now();
                let images = if f.as_os_str() == "-" {
                    store.import(std::io::stdin().lock())
                } else {
                    let file = std::fs::File::open(f)
                        .with_context(|| format!("opening {}", f.display()))?;
                    store.import(file)
                }
                .with_context(|| format!("importing {}", f.display()))?;
                for img in images {
                    let name = if img.repo_tags.is_empty() {
                        img.id.clone()
                    } else {
                        img.repo_tags.join(", ")
                    };
                    println!(
                        "imported {name} ({}, {}) in {:.2}s",
                        &img.id[..19.min(img.id.len())],
                        human(img.size),
                        start.elapsed().as_secs_f64()
                    );
                }
            }
        }
        ImageCommand::Ls(args) => {
            let store = open(&args)?;
            let mut rows = vec![[
                "IMAGE".to_string(),
                "TAG".to_string(),
                "IMAGE ID".to_string(),
                "SIZE".to_string(),
            ]];
            for img in store.list()? {
                let id = img.id.trim_start_matches("sha256:")[..13].to_string();
                let size = human(img.size);
                if img.repo_tags.is_empty() {
                    rows.push(["<none>".into(), "<none>".into(), id, size]);
                    continue;
                }
                for t in &img.repo_tags {
                    let (repo, tag) = match t.rsplit_once(':') {
                        Some((r, tag)) if !tag.contains('/') => (r.to_string(), tag.to_string()),
                        _ => (t.clone(), "<none>".to_string()),
                    };
                    rows.push([repo, tag, id.clone(), size.clone()]);
                }
            }
            let widths: Vec<usize> = (0..4)
                .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
                .collect();
            for r in rows {
                println!(
                    "{:w0$}   {:w1$}   {:w2$}   {}",
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2]
                );
            }
        }
        ImageCommand::Rm(args) => {
            let store = open(&args.store)?;
            let mut failed = false;
            for name in &args.images {
                match store.remove(name) {
                    Ok(Some(img)) => {
                        println!("Deleted: {}", img.repo_tags.first().unwrap_or(&img.id))
                    }
                    Ok(None) => {
                        eprintln!("rkube: no such image: {name}");
                        failed = true;
                    }
                    Err(e) => {
                        eprintln!("rkube: removing {name}: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                bail!("some images were not removed");
            }
        }
    }
    Ok(())
}

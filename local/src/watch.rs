//! Watch mode (`make watch`): when a watched source file changes, the rebuild command runs
//! (the workspace's debug build, then the staging of the binaries into the images' folders),
//! and every function whose image folder now holds other files gets its environments recycled
//! ([`LambdaService::recycle`]): invocations in flight finish on the old code, the next ones
//! start on the new. Nothing else restarts: the gateway, the local endpoint and its data stay.
//!
//! File events come from `notify` (inotify on Linux), the crate cargo-watch and watchexec use.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::lambda::LambdaService;

/// Changes closer together than this make one rebuild (an editor saves in several steps).
pub(crate) const SETTLE: Duration = Duration::from_millis(300);

/// What one file of an image folder is, as far as telling a new build from the old goes: the
/// staging replaces a file only when its content changed (scripts/stage-rootfs), so its inode,
/// size and modification time move exactly then.
type Fingerprint = BTreeMap<PathBuf, (u64, u64, SystemTime)>;

/// Watches source folders and keeps the running functions on the code they hold.
pub struct Watch {
    /// The folders (or files) whose changes start a rebuild.
    pub paths: Vec<PathBuf>,
    /// The rebuild, run with `sh -c` in the current folder.
    pub rebuild: String,
    /// Per function, the folder of its image (`<rootfs>/<command|query>`).
    pub images: BTreeMap<String, PathBuf>,
}

/// Why a rebuild did not pass.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The command could not be started.
    #[error("could not run `{command}`: {source}")]
    NotRun {
        /// The rebuild command.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The command ended with an error.
    #[error("`{command}` ended with {status}")]
    Failed {
        /// The rebuild command.
        command: String,
        /// How it ended.
        status: std::process::ExitStatus,
    },
}

/// One rebuild's outcome, as watch mode prints it.
#[derive(Debug)]
pub enum Rebuilt {
    /// The rebuild failed: the functions keep their code.
    Failed {
        /// How it ended.
        status: RebuildError,
    },
    /// The rebuild passed.
    Recycled {
        /// The functions with new code (none: nothing they run changed).
        functions: Vec<String>,
    },
}

impl Watch {
    /// Rebuilds after every settled batch of changes until `stop` resolves; `report` hears each
    /// outcome. Fails only when the paths cannot be watched.
    pub async fn run(
        self,
        lambda: Arc<LambdaService>,
        mut report: impl FnMut(&[PathBuf], &Rebuilt),
        stop: impl Future<Output = ()>,
    ) -> Result<(), notify::Error> {
        let (changed_tx, mut changed) = mpsc::unbounded_channel::<PathBuf>();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                if !event.kind.is_access() {
                    event.paths.into_iter().for_each(|path| drop(changed_tx.send(path)));
                }
            }
        })?;
        for path in &self.paths {
            watcher.watch(path, RecursiveMode::Recursive).map_err(|e| e.add_path(path.clone()))?;
        }
        let mut before = self.fingerprints();
        tokio::pin!(stop);
        loop {
            let first = tokio::select! {
                () = &mut stop => return Ok(()),
                path = changed.recv() => match path { Some(path) => path, None => return Ok(()) },
            };
            let mut paths = BTreeSet::from([first]);
            while let Ok(Some(path)) = tokio::time::timeout(SETTLE, changed.recv()).await {
                paths.insert(path);
            }
            let paths: Vec<PathBuf> = paths.into_iter().collect();
            let outcome = match self.run_rebuild().await {
                Err(status) => Rebuilt::Failed { status },
                Ok(()) => {
                    let after = self.fingerprints();
                    let mut functions = Vec::new();
                    for (function, fingerprint) in &after {
                        if before.get(function) != Some(fingerprint) && lambda.recycle(function).await {
                            functions.push(function.clone());
                        }
                    }
                    before = after;
                    Rebuilt::Recycled { functions }
                }
            };
            // A change saved while the rebuild ran is still queued: it makes the next rebuild.
            report(&paths, &outcome);
        }
    }

    async fn run_rebuild(&self) -> Result<(), RebuildError> {
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.rebuild)
            .stdin(std::process::Stdio::null())
            .status()
            .await
            .map_err(|source| RebuildError::NotRun { command: self.rebuild.clone(), source })?;
        if status.success() {
            Ok(())
        } else {
            Err(RebuildError::Failed { command: self.rebuild.clone(), status })
        }
    }

    fn fingerprints(&self) -> BTreeMap<String, Fingerprint> {
        self.images.iter().map(|(function, image)| (function.clone(), fingerprint(image))).collect()
    }
}

/// Every file under `folder`, with its inode, size and modification time.
fn fingerprint(folder: &Path) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    walkdir::WalkDir::new(folder)
        .into_iter()
        .flatten()
        .filter(|entry| !entry.file_type().is_dir())
        .filter_map(|entry| {
            let metadata = entry.metadata().ok()?;
            let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            Some((entry.into_path(), (metadata.ino(), metadata.len(), modified)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_moves_when_a_file_is_replaced_and_not_when_it_is_left_alone() {
        let folder = std::env::temp_dir().join(format!("books-watch-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(folder.join("var/task")).unwrap();
        std::fs::write(folder.join("var/task/bootstrap"), b"old").unwrap();
        let first = fingerprint(&folder);
        assert_eq!(first.len(), 1);
        assert_eq!(fingerprint(&folder), first, "nothing changed");
        // Replaced as the staging does: a new file renamed over the old one.
        std::fs::write(folder.join("var/task/bootstrap.new"), b"new").unwrap();
        std::fs::rename(folder.join("var/task/bootstrap.new"), folder.join("var/task/bootstrap")).unwrap();
        assert_ne!(fingerprint(&folder), first, "a replaced file is a new fingerprint");
        std::fs::remove_dir_all(&folder).unwrap();
    }
}

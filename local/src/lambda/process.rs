//! The processes of an execution environment: started with exactly the environment Lambda
//! gives them, each leading its own process group (so that what it starts ends with the
//! environment), their output captured line by line, their peak memory read from /proc.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, BufReader, Interest};
use tokio::process::{Child, Command};

use super::observe::Scheduled;

/// A started process and its pid (kept after the child handle is taken for waiting).
pub(super) struct Process {
    pub(crate) name: String,
    pub(crate) pid: u32,
    pub(crate) child: Child,
}

impl Drop for Process {
    /// An environment dropped without its shutdown (a panic, books-local stopping) still takes
    /// its processes' groups along. Only while the leader is unreaped: until then its pid (the
    /// group's id) cannot belong to anyone else.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal_group(self.pid, libc::SIGKILL);
        }
        guard(Guard::Forget, self.pid);
    }
}

impl Process {
    /// Ends the process and everything it started, and reaps it.
    pub(super) async fn end(&mut self) {
        signal_group(self.pid, libc::SIGKILL);
        let _ = self.child.start_kill();
        // Before the leader is reaped: until then its group's id cannot be anyone else's.
        guard(Guard::Forget, self.pid);
        let _ = self.child.wait().await;
    }
}

/// Starts `program` with a clean environment and hands every output line to `on_line`.
pub(super) async fn spawn(
    name: &str,
    program: &Path,
    args: &[String],
    cwd: &Path,
    env: &BTreeMap<String, String>,
    on_line: impl Fn(&str) + Send + Sync + Clone + 'static,
) -> std::io::Result<Process> {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: the environment ends with everything the process started (killpg),
        // and a Ctrl-C meant for books-local reaches only books-local, which shuts it down.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = start(&mut command).await?;
    let pid = child.id().unwrap_or_default();
    guard(Guard::Watch, pid);
    if let Some(stdout) = child.stdout.take() {
        let on_line = on_line.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                on_line(&line);
            }
        });
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                on_line(&line);
            }
        });
    }
    Ok(Process { name: name.to_owned(), pid, child })
}

/// How long a start Linux refuses with "text file busy" (ETXTBSY) is tried again.
///
/// The kernel will not run a file that any process holds open for writing. A program or script
/// written a moment ago by a multi-threaded process (a test harness laying out `/opt/extensions`,
/// a build replacing the binary) stays open for writing in any child another of its threads
/// forked meanwhile, until that child calls exec: a passing state, so the start waits it out,
/// within bounds.
const TEXT_FILE_BUSY_PATIENCE: Duration = Duration::from_secs(5);

/// Starts the command, trying again while its file is busy being written (see above).
async fn start(command: &mut Command) -> std::io::Result<Child> {
    let since = std::time::Instant::now();
    loop {
        match command.spawn() {
            Err(error) if error.raw_os_error() == Some(libc::ETXTBSY) && since.elapsed() < TEXT_FILE_BUSY_PATIENCE => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            started => return started,
        }
    }
}

/// Peak resident memory of a process in MB (VmHWM), 0 when it is gone.
pub(super) fn peak_memory_mb(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return 0 };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb.div_ceil(1024))
}

/// Resolves once the process `pid` (a child of ours) has exited, a zombie included, without
/// reaping it (shutdown may still signal it): its pidfd (Linux 5.3) becomes readable then.
/// Waiting costs nothing until then, where polling read /proc/<pid>/stat every 20 ms for each
/// process of each environment, frozen ones included. On a kernel without pidfds (or a sandbox
/// refusing them) it falls back to that polling.
pub(super) async fn exited(pid: u32) {
    // SAFETY: pidfd_open(2) takes a pid and flags, and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        match std::io::Error::last_os_error().raw_os_error() {
            // Gone already (reaped): it has exited.
            Some(libc::ESRCH) => return,
            _ => return exited_polling(pid).await,
        }
    }
    // SAFETY: a descriptor pidfd_open just returned, owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // SAFETY: an OwnedFd is one open descriptor for as long as it lives, here inside the AsyncFd.
    match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
        Ok(fd) => {
            // Readable means exited: an error here (none is documented) is taken the same way.
            let _ = fd.readable().await;
        }
        Err(_) => exited_polling(pid).await,
    }
}

/// [`exited`] by reading /proc every 20 ms.
pub(super) async fn exited_polling(pid: u32) {
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

/// The scheduler's account of a process's main thread (`/proc/<pid>/schedstat`, kept by Linux
/// when built with schedstats or delay accounting, as distributions' kernels are): the time it
/// ran and the time it was runnable but waited for a CPU. None when the kernel keeps no such file.
pub(super) fn scheduled(pid: u32) -> Option<Scheduled> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    let (Some(Ok(ran)), Some(Ok(waited))) = (fields.next(), fields.next()) else { return None };
    Some(Scheduled { on_cpu: Duration::from_nanos(ran), runqueue: Duration::from_nanos(waited) })
}

pub(super) fn signal(pid: u32, signal: i32) {
    if pid > 0 {
        // SAFETY: kill(2) on a pid we started; a stale pid at worst gets ESRCH.
        unsafe {
            libc::kill(pid as libc::pid_t, signal);
        }
    }
}

/// Resident memory in MB of the processes `leaders` (cheap: a file each), or with `whole` of
/// every process in the groups they lead (what they started included, a scan of /proc): the
/// environment's memory as Lambda's limit counts it.
pub(super) fn groups_rss_mb(leaders: &[u32], whole: bool) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let paths: Vec<std::path::PathBuf> = if whole {
        let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
            .map(|e| e.path())
            .collect()
    } else {
        leaders.iter().map(|pid| std::path::PathBuf::from(format!("/proc/{pid}"))).collect()
    };
    let mut bytes = 0;
    for path in paths {
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else { continue };
        // After the command's closing parenthesis: state, ppid, pgrp, …, rss (the 22nd field).
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(group), Some(rss)) = (fields.get(2), fields.get(21)) else { continue };
        if group.parse::<u32>().is_ok_and(|g| leaders.contains(&g)) {
            bytes += rss.parse::<u64>().unwrap_or(0) * page;
        }
    }
    bytes / (1024 * 1024)
}

/// Sends `signal` to the process group `pid` leads: the process and everything it started.
pub(super) fn signal_group(pid: u32, signal: i32) {
    if pid > 0 {
        // SAFETY: killpg(2) on a group we created (process_group(0) at spawn); a stale group
        // at worst gets ESRCH.
        unsafe {
            libc::killpg(pid as libc::pid_t, signal);
        }
    }
}

/// What the guardian is told about a process group.
#[derive(Clone, Copy)]
enum Guard {
    /// Kill it if books-local ends.
    Watch,
    /// It is gone (or about to be reaped): leave it.
    Forget,
}

/// The guardian: a shell started once per books-local, reading `+ <group>` and `- <group>` lines
/// on a pipe only books-local holds. At its end of file — books-local gone, however it went, a
/// SIGKILL included, when no destructor runs — it kills the groups still listed: nothing an
/// environment started outlives books-local. Written here because the kernel's own tools do not
/// fit: PR_SET_PDEATHSIG reaches direct children only (not what a function started) and fires
/// when the spawning thread ends, and a subreaper dies with books-local.
const GUARDIAN: &str = r#"trap '' INT TERM HUP
groups=' '
while read -r op group; do
  case "$op" in
    +) groups="$groups$group " ;;
    -) kept=' '; for g in $groups; do [ "$g" = "$group" ] || kept="$kept$g "; done; groups=$kept ;;
  esac
done
for g in $groups; do kill -s CONT -- "-$g" 2>/dev/null; kill -s KILL -- "-$g" 2>/dev/null; done
"#;

fn guard(what: Guard, pid: u32) {
    static PIPE: OnceLock<Option<Mutex<std::process::ChildStdin>>> = OnceLock::new();
    let pipe = PIPE.get_or_init(|| {
        use std::os::unix::process::CommandExt;
        let started = std::process::Command::new("/bin/sh")
            .args(["-c", GUARDIAN])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group: a Ctrl-C meant for books-local does not reach it.
            .process_group(0)
            .spawn();
        match started {
            Ok(mut guardian) => guardian.stdin.take().map(Mutex::new),
            Err(error) => {
                tracing::warn!(%error, "no guardian (/bin/sh): if books-local is killed, what functions started may outlive it");
                None
            }
        }
    });
    let Some(pipe) = pipe else { return };
    if pid == 0 {
        return;
    }
    let line = match what {
        Guard::Watch => format!("+ {pid}\n"),
        Guard::Forget => format!("- {pid}\n"),
    };
    if let Ok(mut pipe) = pipe.lock() {
        // A line is far below the pipe's buffer, and the guardian reads as it comes.
        let _ = pipe.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_process_is_accounted_on_cpu() {
        let mut busy = std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn().unwrap();
        let since = std::time::Instant::now();
        let mut seen = scheduled(busy.id()).expect("/proc/<pid>/schedstat");
        while seen.on_cpu < Duration::from_millis(20) && since.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(10));
            seen = scheduled(busy.id()).unwrap();
        }
        busy.kill().unwrap();
        busy.wait().unwrap();
        assert!(seen.on_cpu >= Duration::from_millis(20), "{seen:?} after {:?}", since.elapsed());
        assert!(scheduled(u32::MAX - 1).is_none(), "no such process");
    }

    #[tokio::test]
    async fn exit_is_seen_without_reaping_and_a_frozen_process_has_not_exited() {
        use std::future::Future;
        async fn pending<F: Future>(mut f: std::pin::Pin<&mut F>) -> bool {
            std::future::poll_fn(|cx| std::task::Poll::Ready(f.as_mut().poll(cx).is_pending())).await
        }
        let mut child = std::process::Command::new("sleep").arg("600").spawn().unwrap();
        let pid = child.id();
        let mut by_pidfd = std::pin::pin!(exited(pid));
        let mut by_polling = std::pin::pin!(exited_polling(pid));
        assert!(pending(by_pidfd.as_mut()).await, "running, yet seen as exited (pidfd)");
        assert!(pending(by_polling.as_mut()).await, "running, yet seen as exited (/proc)");
        signal(pid, libc::SIGSTOP);
        assert!(pending(by_pidfd.as_mut()).await, "frozen, yet seen as exited (pidfd)");
        assert!(pending(by_polling.as_mut()).await, "frozen, yet seen as exited (/proc)");
        signal(pid, libc::SIGKILL);
        let bound = Duration::from_secs(60);
        tokio::time::timeout(bound, by_pidfd).await.expect("the exit was seen (pidfd)");
        tokio::time::timeout(bound, by_polling).await.expect("the exit was seen (/proc)");
        // Neither reaped it: its status is still there for whoever owns it.
        assert!(child.try_wait().unwrap().is_some_and(|status| !status.success()));
        // Gone altogether (reaped): exited at once.
        tokio::time::timeout(bound, exited(pid)).await.expect("a reaped process has exited");
    }

    #[tokio::test]
    async fn a_program_still_open_for_writing_starts_once_it_is_closed() {
        use std::future::Future;
        let dir = std::env::temp_dir().join(format!("books-local-busy-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let program = dir.join("program");
        let mut writing = std::fs::File::create(&program).unwrap();
        writing.write_all(b"#!/bin/sh\necho started\n").unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // The kernel's refusal, seen by the standard library's own start.
        let refused = std::process::Command::new(&program).spawn().unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(libc::ETXTBSY), "{refused}");

        let (lines, mut said) = tokio::sync::mpsc::unbounded_channel();
        let on_line = move |line: &str| drop(lines.send(line.to_owned()));
        let env = BTreeMap::new();
        let mut starting = std::pin::pin!(spawn("busy", &program, &[], &dir, &env, on_line));
        // The first try meets the busy file and waits; then the writer is done.
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(starting.as_mut().poll(cx).is_pending())).await;
        assert!(first, "started while its file was open for writing");
        drop(writing);
        let mut process = starting.await.expect("started once the file is closed");
        assert_eq!(said.recv().await.as_deref(), Some("started"));
        process.end().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_our_own_peak_memory() {
        assert!(peak_memory_mb(std::process::id()) > 0);
        assert_eq!(peak_memory_mb(u32::MAX - 1), 0);
    }
}

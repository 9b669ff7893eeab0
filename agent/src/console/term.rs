//! The terminal layer: raw mode on the console's tty, key bytes to [`Input`]s, drawing, and the
//! background work (agent queries with short timeouts) that must never freeze the menu.
//!
//! The work itself is in [`super::work`].
//!
//! Raw mode is set with termios directly (`libc`, already a dependency): the console needs no
//! more than single keys, a lone Esc and full-screen redraws, which a TUI crate would add a
//! large dependency tree for.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::work::{spawn_work, Ctx};
use super::{Action, AgentView, Console, Event, Input};
use crate::config::Config;

/// How long an admin API query may take before the agent counts as not running.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the agent's status is asked again.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// How often progress indicators move.
pub const TICK: Duration = Duration::from_millis(250);

/// Terminal settings restored when dropped.
struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    fn enter(fd: i32) -> std::io::Result<Self> {
        // SAFETY: termios is plain data and `fd` an open descriptor; errors are checked.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut raw = saved;
            raw.c_lflag &= !(libc::ICANON | libc::ECHO | libc::IEXTEN);
            raw.c_iflag &= !(libc::IXON | libc::ICRNL);
            raw.c_cc[libc::VMIN] = 0;
            raw.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(fd, libc::TCSANOW, &raw) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(Self { fd, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enter` on the same descriptor.
        unsafe {
            libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved);
        }
    }
}

/// Splits the bytes of one read into keys. A lone ESC is Esc; an escape sequence (arrow keys,
/// function keys) is dropped whole.
pub fn keys(bytes: &[u8]) -> Vec<Input> {
    let mut out = Vec::new();
    let text = String::from_utf8_lossy(bytes);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if matches!(chars.peek(), Some('[') | Some('O')) {
                    // CSI / SS3 sequence: skip to its final byte.
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) && c != '[' {
                            break;
                        }
                    }
                } else {
                    out.push(Input::Esc);
                }
            }
            '\r' | '\n' => out.push(Input::Enter),
            '\x7f' | '\x08' => out.push(Input::Backspace),
            c => out.push(Input::Char(c)),
        }
    }
    out
}

fn draw(out: &mut impl Write, console: &Console) -> std::io::Result<()> {
    let lines = console.render();
    let mut frame = String::from("\x1b[H\x1b[2J");
    frame.push_str(&lines.join("\r\n"));
    out.write_all(frame.as_bytes())?;
    out.flush()
}

/// Runs `f` to completion on a runtime of its own. A name lookup that outlives its timeout
/// keeps a blocking thread busy; the runtime is let go without waiting for it.
pub(super) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let out = rt.block_on(f);
    rt.shutdown_background();
    out
}

fn agent_view(config: &Config) -> AgentView {
    match block_on(async {
        tokio::time::timeout(
            AGENT_TIMEOUT,
            crate::admin::AdminClient::for_config(config).status(),
        )
        .await
    }) {
        Ok(Ok(status)) => AgentView::Running(Box::new(status)),
        Ok(Err(_)) => AgentView::NotRunning("no answer on the admin API".into()),
        Err(_) => AgentView::NotRunning(format!("no answer within {}s", AGENT_TIMEOUT.as_secs())),
    }
}

/// Runs the console on the process's terminal until `x`.
pub fn run(config: Config, config_path: &Path, root: &Path) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let fd = stdin.as_raw_fd();
    let _raw = RawMode::enter(fd)
        .map_err(|e| anyhow::anyhow!("the console needs a terminal (stdin): {e}"))?;
    let mut stdout = std::io::stdout();
    let resources = super::resources::Report::measure(root);
    let mut console = Console::new(&config.cloud.region, resources);
    console.configured_timezone = config.gateway.timezone.name().to_string();
    let ctx = Ctx {
        config: config.clone(),
        config_path: config_path.to_path_buf(),
        root: root.to_path_buf(),
    };
    let (tx, rx) = mpsc::channel::<Event>();
    {
        let tx = tx.clone();
        let config = config.clone();
        std::thread::spawn(move || loop {
            if tx.send(Event::Agent(agent_view(&config))).is_err() {
                return;
            }
            std::thread::sleep(POLL_EVERY);
        });
    }
    draw(&mut stdout, &console)?;
    let mut buf = [0u8; 256];
    let mut last_tick = std::time::Instant::now();
    loop {
        let mut changed = false;
        while let Ok(event) = rx.try_recv() {
            let work = console.event(event);
            if !matches!(work, Action::Redraw | Action::Quit) {
                spawn_work(
                    work,
                    ctx.clone(),
                    console.agent.clone(),
                    console.resources.clone(),
                    tx.clone(),
                );
            }
            changed = true;
        }
        if last_tick.elapsed() >= TICK {
            last_tick = std::time::Instant::now();
            let second = console.now.timestamp();
            console.event(Event::Tick(chrono::Utc::now()));
            let clock = matches!(console.screen, super::Screen::Time(_))
                && console.now.timestamp() / 60 != second / 60;
            changed |= console.busy() || clock;
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a 100 ms timeout keeps background results flowing.
        let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
        if ready > 0 {
            let n = stdin.lock().read(&mut buf)?;
            if n == 0 {
                break;
            }
            for key in keys(&buf[..n]) {
                match console.handle(key) {
                    Action::Quit => {
                        stdout.write_all(b"\x1b[H\x1b[2J")?;
                        stdout.flush()?;
                        return Ok(());
                    }
                    Action::Redraw => {}
                    work => spawn_work(
                        work,
                        ctx.clone(),
                        console.agent.clone(),
                        console.resources.clone(),
                        tx.clone(),
                    ),
                }
                changed = true;
            }
        }
        if changed {
            draw(&mut stdout, &console)?;
        }
    }
    Ok(())
}

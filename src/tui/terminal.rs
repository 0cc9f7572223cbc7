//! Raw mode and the alternate screen, restored on every way out: drop (quit,
//! error, signal), and panic (a hook that restores first, then chains to the
//! previous hook so the message is readable).

use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{cursor, execute, terminal};
use std::io::{BufWriter, Stdout, Write};
use std::mem::ManuallyDrop;

pub struct Guard {
    /// Never dropped: ratatui's `Drop` shows the cursor again and, when that
    /// fails because the terminal is gone (EIO after a hang-up), reports it
    /// with `eprintln!`, which panics when stderr is that same dead terminal
    /// (exit 101). `restore` already shows the cursor, best effort.
    terminal: ManuallyDrop<Terminal<CrosstermBackend<BufWriter<Stdout>>>>,
}

/// Best effort: the terminal may already be gone.
pub fn restore() {
    let _ = terminal::disable_raw_mode();
    let mut out = std::io::stdout();
    let _ = execute!(out, terminal::LeaveAlternateScreen, cursor::Show);
    let _ = out.flush();
}

impl Guard {
    pub fn enter() -> anyhow::Result<Guard> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        terminal::enable_raw_mode()?;
        let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout());
        execute!(out, terminal::EnterAlternateScreen, cursor::Hide)?;
        // Fullscreen viewport: ratatui asks the kernel for the size (ioctl) and
        // never sends the terminal a query that might not be answered.
        let terminal = Terminal::new(CrosstermBackend::new(out))?;
        Ok(Guard {
            terminal: ManuallyDrop::new(terminal),
        })
    }

    pub fn size(&self) -> anyhow::Result<ratatui::layout::Size> {
        Ok(self.terminal.size()?)
    }

    /// Writes bytes straight to the terminal (an OSC 52 sequence), between draws.
    pub fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let out = self.terminal.backend_mut();
        out.write_all(bytes)?;
        Write::flush(out)
    }

    pub fn draw(&mut self, f: impl FnOnce(&mut ratatui::Frame)) -> anyhow::Result<()> {
        self.terminal.draw(f)?;
        Ok(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Whatever a failed draw left buffered goes out before the restore,
        // not after it onto the main screen.
        let _ = Backend::flush(self.terminal.backend_mut());
        restore();
    }
}

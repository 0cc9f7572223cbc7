//! Raw mode and the alternate screen, restored on every way out: drop (quit,
//! error, signal), and panic (a hook that restores first, then chains to the
//! previous hook so the message is readable).

use ratatui::backend::Backend;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::layout::{Rect, Size};
use ratatui::{Terminal, TerminalOptions, Viewport};
use std::io::{BufWriter, Stdout, Write};
use std::mem::ManuallyDrop;

pub struct Guard {
    /// Never dropped: ratatui's `Drop` shows the cursor again and, when that
    /// fails because the terminal is gone (EIO after a hang-up), reports it
    /// with `eprintln!`, which panics when stderr is that same dead terminal
    /// (exit 101). `restore` already shows the cursor, best effort.
    terminal: ManuallyDrop<Terminal<CrosstermBackend<BufWriter<Stdout>>>>,
    /// What is drawn: the terminal's size, clamped by [`clamp`].
    area: Rect,
}

/// The largest screen drawn. A terminal can say it is 65535x65535; two
/// buffers of that many cells would be 206 GB. Beyond this, the rest of the
/// screen is left blank.
pub const MAX_COLS: u16 = 1000;
pub const MAX_ROWS: u16 = 500;

/// The area drawn on a terminal of `size`.
pub fn clamp(size: Size) -> Rect {
    Rect::new(0, 0, size.width.min(MAX_COLS), size.height.min(MAX_ROWS))
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
        // A fixed viewport, resized by `draw` to the clamped size: ratatui
        // asks the kernel for the size (ioctl) and never sends the terminal
        // a query that might not be answered.
        let backend = CrosstermBackend::new(out);
        let area = clamp(backend.size()?);
        let terminal = Terminal::with_options(
            backend,
            TerminalOptions {
                viewport: Viewport::Fixed(area),
            },
        )?;
        Ok(Guard {
            terminal: ManuallyDrop::new(terminal),
            area,
        })
    }

    /// The size drawn (clamped).
    pub fn size(&self) -> anyhow::Result<Size> {
        Ok(self.area.as_size())
    }

    /// Writes bytes straight to the terminal (an OSC 52 sequence), between draws.
    pub fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let out = self.terminal.backend_mut();
        out.write_all(bytes)?;
        Write::flush(out)
    }

    pub fn draw(&mut self, f: impl FnOnce(&mut ratatui::Frame)) -> anyhow::Result<()> {
        let area = clamp(self.terminal.size()?);
        if area != self.area {
            self.terminal.resize(area)?;
            self.area = area;
        }
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

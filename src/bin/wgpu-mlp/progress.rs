//! Progress on stderr while a search trains: a line that rewrites itself on a terminal, a
//! line every few seconds into a pipe or a log, and the time to the first epoch (which on a
//! cold shader cache is mostly kernel compilation).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Progress {
    total: usize,
    done: usize,
    started: Instant,
    shown: Instant,
    terminal: bool,
    quiet: bool,
}

impl Progress {
    /// `total`: the most epochs the work can take (early stopping may end it sooner).
    pub fn new(total: usize, quiet: bool) -> Self {
        if !quiet {
            eprintln!("preparing kernels and training (up to {total} epochs in all)...");
        }
        let now = Instant::now();
        Progress {
            total,
            done: 0,
            started: now,
            shown: now,
            terminal: std::io::stderr().is_terminal(),
            quiet,
        }
    }

    /// After each epoch of any model, with its training loss.
    pub fn epoch(&mut self, loss: f32) {
        self.done += 1;
        if self.quiet {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        if self.done == 1 {
            eprintln!("first epoch done after {elapsed:.1} s (kernels compiled)");
        }
        let every = if self.terminal {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(5)
        };
        if self.shown.elapsed() < every {
            return;
        }
        self.shown = Instant::now();
        let line = format!("{}/{} epochs, {elapsed:.0} s, loss {loss:.4}", self.done, self.total);
        if self.terminal {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }

    pub fn finish(&self) {
        if self.quiet {
            return;
        }
        if self.terminal {
            eprint!("\r\x1b[K");
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        eprintln!("{} epochs trained in {elapsed:.1} s", self.done);
    }
}

//! What the performance bench measures with: commands timed with their
//! peak memory, repeated samples summed up as median, min and max, and the
//! table of figures against their references and targets.
//!
//! The machines the bench runs on are shared and noisy, so every figure
//! that can be is a ratio against a reference tool measured in the same run
//! (see `docs/performance.md`).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One run of a command: its wall time and its peak resident memory.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Wall-clock time.
    pub wall: Duration,
    /// Peak resident set size, in bytes.
    pub peak_rss: u64,
}

/// Runs `command` to completion under `/usr/bin/time`, which reports the
/// peak memory of the process; panics with its standard error when it
/// fails.
pub fn measure(command: &Command, scratch: &Path) -> Measured {
    let report = scratch.join(".time-report");
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg(command.get_program())
        .args(command.get_args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => timed.env(key, value),
            None => timed.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        timed.current_dir(dir);
    }
    let start = Instant::now();
    let output = timed.output().expect("/usr/bin/time can be started");
    let wall = start.elapsed();
    assert!(
        output.status.success(),
        "{:?} {:?} failed: {}",
        command.get_program(),
        command.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&report).expect("/usr/bin/time wrote its report");
    let kib: u64 = text
        .lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected /usr/bin/time report: {text}"));
    Measured {
        wall,
        peak_rss: kib * 1024,
    }
}

/// Repeated samples of one figure.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// Adds one sample.
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    /// The middle sample (the mean of the two middle ones for an even
    /// count); `NaN` when there is none.
    pub fn median(&self) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
        }
    }

    /// The smallest sample.
    pub fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::NAN, f64::min)
    }

    /// The largest sample.
    pub fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NAN, f64::max)
    }

    /// The samples in the order they were taken.
    pub fn values(&self) -> &[f64] {
        &self.0
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether a bigger or a smaller figure is better.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// The figure must be at least the target.
    AtLeast(f64),
    /// The figure must be at most the target.
    AtMost(f64),
}

impl Goal {
    fn met(self, value: f64) -> bool {
        match self {
            Goal::AtLeast(target) => value >= target,
            Goal::AtMost(target) => value <= target,
        }
    }

    fn text(self, unit: &str) -> String {
        match self {
            Goal::AtLeast(target) => format!("≥ {target} {unit}"),
            Goal::AtMost(target) => format!("≤ {target} {unit}"),
        }
        .trim_end()
        .to_owned()
    }
}

/// One line of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What is measured.
    pub figure: String,
    /// Its unit ("s", "MB", "x").
    pub unit: String,
    /// The samples.
    pub samples: Samples,
    /// The reference's median in the same unit, and what it is.
    pub reference: Option<(f64, String)>,
    /// The target the median must meet.
    pub goal: Option<Goal>,
}

/// Every figure of a bench run, printed as it comes and as a table at the
/// end.
#[derive(Debug, Default)]
pub struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Adds a figure and prints it at once, so that a long run shows its
    /// progress.
    pub fn add(&mut self, row: Row) {
        println!("{}", Self::line(&row));
        self.rows.push(row);
    }

    fn line(row: &Row) -> String {
        let mut line = format!(
            "{:<58} median {:>9.3} {} (min {:.3}, max {:.3}, n={})",
            row.figure,
            row.samples.median(),
            row.unit,
            row.samples.min(),
            row.samples.max(),
            row.samples.len()
        );
        if let Some((reference, what)) = &row.reference {
            let _ = write!(line, "; {what} {reference:.3} {}", row.unit);
        }
        if let Some(goal) = row.goal {
            let verdict = if goal.met(row.samples.median()) {
                "met"
            } else {
                "NOT met"
            };
            let _ = write!(line, "; target {} {verdict}", goal.text(&row.unit));
        }
        line
    }

    /// Whether every figure with a target meets it.
    pub fn all_met(&self) -> bool {
        self.rows
            .iter()
            .all(|row| row.goal.is_none_or(|goal| goal.met(row.samples.median())))
    }

    /// The figures as a Markdown table, for `docs/performance.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| figure | median | min | max | runs | reference | target | met |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for row in &self.rows {
            let reference = row
                .reference
                .as_ref()
                .map_or(String::new(), |(value, what)| {
                    format!("{what}: {value:.3} {}", row.unit)
                });
            let (target, met) = row.goal.map_or((String::new(), String::new()), |goal| {
                (
                    goal.text(&row.unit),
                    if goal.met(row.samples.median()) {
                        "yes".to_owned()
                    } else {
                        "**no**".to_owned()
                    },
                )
            });
            let _ = writeln!(
                out,
                "| {} | {:.3} {unit} | {:.3} | {:.3} | {} | {reference} | {target} | {met} |",
                row.figure,
                row.samples.median(),
                row.samples.min(),
                row.samples.max(),
                row.samples.len(),
                unit = row.unit,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: &[f64]) -> Samples {
        let mut samples = Samples::default();
        for value in values {
            samples.push(*value);
        }
        samples
    }

    #[test]
    fn the_median_of_an_odd_and_an_even_count() {
        assert_eq!(samples(&[3.0, 1.0, 2.0]).median(), 2.0);
        assert_eq!(samples(&[4.0, 1.0, 3.0, 2.0]).median(), 2.5);
        assert!(samples(&[]).median().is_nan());
        assert_eq!(samples(&[3.0, 1.0, 2.0]).min(), 1.0);
        assert_eq!(samples(&[3.0, 1.0, 2.0]).max(), 3.0);
    }

    #[test]
    fn a_target_is_met_by_the_median() {
        let mut report = Report::default();
        report.add(Row {
            figure: "ratio".into(),
            unit: "x".into(),
            samples: samples(&[0.7, 0.9, 0.85]),
            reference: None,
            goal: Some(Goal::AtLeast(0.8)),
        });
        assert!(report.all_met());
        report.add(Row {
            figure: "seconds".into(),
            unit: "s".into(),
            samples: samples(&[2.0, 1.4, 1.6]),
            reference: None,
            goal: Some(Goal::AtMost(1.5)),
        });
        assert!(!report.all_met());
        assert!(report.markdown().contains("| seconds | 1.600 s |"));
        assert!(report.markdown().contains("**no**"));
    }
}

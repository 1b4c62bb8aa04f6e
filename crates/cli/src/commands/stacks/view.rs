//! Progress of a run on stderr: a live view (a line per stack with state, resources done and elapsed time,
//! plus a line for each failing resource) when stderr is a terminal, plain timestamped lines otherwise.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lifeboat_aws::changes::StatefulRisk;
use lifeboat_aws::engine::RunReport;
use lifeboat_aws::progress::{Observer, Outcome, Phase, Progress};
use lifeboat_aws::synth_output::SynthOutput;

use crate::output::{Style, table};

pub use crate::output::{ask, interactive};

struct StackLine {
    region: String,
    state: String,
    done: usize,
    total: usize,
    bar: Option<ProgressBar>,
}

pub struct LiveView {
    started: Instant,
    style: Style,
    /// `--yes`: data risks are accepted without asking.
    yes: bool,
    multi: Option<MultiProgress>,
    lines: Mutex<BTreeMap<String, StackLine>>,
    /// Data-risk questions go one at a time.
    asking: Mutex<()>,
}

impl LiveView {
    /// `stacks`: ids in the order to show them. The live view needs stderr to be a terminal.
    pub fn new(synth: &SynthOutput, stacks: &[String], yes: bool, style: Style) -> Self {
        let live = std::io::stderr().is_terminal();
        let multi =
            live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8)));
        let width = stacks.iter().map(String::len).max().unwrap_or(10);
        let bar_style = ProgressStyle::with_template(&format!(
            "{{spinner}} {{prefix:<{}}} {{msg}} [{{elapsed}}]",
            width + 12
        ))
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let mut lines = BTreeMap::new();
        for id in stacks {
            let Some(entry) = synth.stack(id) else {
                continue;
            };
            let bar = multi.as_ref().map(|m| {
                let bar = m.add(ProgressBar::new_spinner());
                bar.set_style(bar_style.clone());
                bar.set_prefix(format!("{id} ({})", entry.region));
                bar.set_message("waiting");
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            lines.insert(
                id.clone(),
                StackLine {
                    region: entry.region.clone(),
                    state: "waiting".into(),
                    done: 0,
                    total: entry.resource_count,
                    bar,
                },
            );
        }
        Self {
            started: Instant::now(),
            style,
            yes,
            multi,
            lines: Mutex::new(lines),
            asking: Mutex::new(()),
        }
    }

    /// A line above the live view, or a plain line.
    fn say(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("[{:>6.1}s] {text}", self.started.elapsed().as_secs_f64()),
        }
    }

    fn update(&self, stack: &str, f: impl FnOnce(&mut StackLine)) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let Some(line) = lines.get_mut(stack) else {
            return;
        };
        f(line);
        let msg = if line.total > 0 && line.state != "waiting" {
            format!("{:<12} {}/{} resources", line.state, line.done, line.total)
        } else {
            line.state.clone()
        };
        match &line.bar {
            Some(bar) => bar.set_message(msg),
            None => eprintln!(
                "[{:>6.1}s] {stack} ({}): {msg}",
                self.started.elapsed().as_secs_f64(),
                line.region
            ),
        }
    }

    /// Stops the live view (call before printing the summary).
    pub fn finish(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

fn phase_label(p: &Phase) -> &'static str {
    match p {
        Phase::Planning => "change set",
        Phase::Creating => "creating",
        Phase::Updating => "updating",
        Phase::RemovingFailedStack => "removing failed stack",
        Phase::EmptyingBuckets => "emptying buckets",
        Phase::Deleting => "deleting",
        Phase::WaitingForOperation => "waiting for running operation",
        Phase::ContinuingRollback => "continuing rollback",
        Phase::RetainingResources => "deleting, retaining what cannot be deleted",
        Phase::Protected => "termination protection on",
    }
}

impl Observer for LiveView {
    fn event(&self, event: Progress) {
        match event {
            Progress::Phase { stack, phase } => {
                self.update(&stack, |l| l.state = phase_label(&phase).into())
            }
            Progress::Resources { stack, done, total } => self.update(&stack, |l| {
                l.done = done;
                l.total = total.max(done);
            }),
            Progress::ResourceFailed {
                stack,
                logical_id,
                resource_type,
                reason,
            } => {
                self.say(&format!(
                    "{} {stack}: {logical_id} ({resource_type}): {reason}",
                    self.style.error("failed")
                ));
            }
            Progress::Finished {
                stack,
                outcome,
                elapsed_ms,
            } => {
                let label = outcome.label();
                let painted = if outcome.is_success() {
                    self.style.ok(label)
                } else {
                    self.style.error(label)
                };
                let detail = outcome
                    .detail()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
                match lines.get_mut(&stack).and_then(|l| l.bar.take()) {
                    Some(bar) => {
                        if matches!(outcome, Outcome::Created { .. } | Outcome::Updated { .. }) {
                            bar.finish_with_message(format!(
                                "{painted} {:.1}s{detail}",
                                elapsed_ms as f64 / 1000.0
                            ));
                        } else {
                            bar.finish_with_message(format!("{painted}{detail}"));
                        }
                    }
                    None => eprintln!(
                        "[{:>6.1}s] {stack}: {painted}{detail}",
                        self.started.elapsed().as_secs_f64()
                    ),
                }
            }
            Progress::Warning { message } => {
                self.say(&format!("{} {message}", self.style.error("WARNING:")))
            }
        }
    }

    fn approve_data_risk(&self, stack: &str, risks: &[StatefulRisk]) -> bool {
        let list: Vec<String> = risks.iter().map(ToString::to_string).collect();
        if self.yes {
            self.say(&format!(
                "{stack}: --yes given, proceeding to {}",
                list.join("; ")
            ));
            return true;
        }
        if !interactive() {
            self.say(&format!(
                "{} {stack} would {}; refusing without --yes (no terminal to ask on)",
                self.style.error("refused:"),
                list.join("; ")
            ));
            return false;
        }
        let _one_at_a_time = self.asking.lock().unwrap_or_else(|p| p.into_inner());
        let question = format!(
            "{} {stack} would {}. Data in these resources is lost. Proceed?",
            self.style.error("DATA AT RISK:"),
            list.join("; ")
        );
        match &self.multi {
            Some(m) => m.suspend(|| ask(&question)),
            None => ask(&question),
        }
    }
}

/// The end-of-run table on stdout (or the report as JSON).
pub fn print_report(report: &RunReport, json: bool) {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    let rows: Vec<Vec<String>> = report
        .stacks
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                s.region.clone(),
                s.outcome.label().to_string(),
                format!("{:.1}s", s.elapsed_ms as f64 / 1000.0),
                s.outcome.detail().unwrap_or_default(),
            ]
        })
        .collect();
    out!(
        "{}",
        table(&["stack", "region", "result", "time", "detail"], &rows)
    );
}

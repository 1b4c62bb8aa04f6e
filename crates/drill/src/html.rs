//! `report.html`: one self-contained page (inline CSS and SVG, nothing fetched) for a game-day review: the
//! verdict first, then the timeline, then the figures and the runbook steps behind them.

use crate::report::{Marker, Report, Verdict};
use std::fmt::Write;

const CHART_W: f64 = 1000.0;
const CHART_H: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 36.0;

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.2} s")).unwrap_or_else(|| "—".into())
}

/// A numbered marker on the chart; the number refers to a row of the legend below it, so dense steps stay
/// readable where labels on the chart would overlap.
struct ChartMarker {
    number: usize,
    at_s: f64,
    label: String,
    class: &'static str,
}

fn chart_markers(report: &Report) -> Vec<ChartMarker> {
    let mut markers: Vec<(f64, String, &'static str)> = Vec::new();
    let Marker { label, at_s } = &report.fault;
    markers.push((*at_s, label.clone(), "fault"));
    if let Some(Marker { label, at_s }) = &report.detection {
        markers.push((*at_s, label.clone(), "detection"));
    }
    if report.transitions.is_empty() {
        for run in &report.runbooks {
            for step in &run.steps {
                markers.push((
                    step.started_s,
                    format!("{}: {}", run.runbook, step.name),
                    "step",
                ));
            }
        }
    } else {
        // A cycle has two runbooks per cycle: the chart marks the moves, the tables below list the steps.
        markers.retain(|m| m.2 != "fault" || report.transitions.is_empty());
        for t in &report.transitions {
            markers.push((
                t.started_s,
                format!("cycle {}: {} ({})", t.cycle, t.kind, t.cause),
                if t.kind == "failback" {
                    "step"
                } else {
                    "fault"
                },
            ));
            if let Some(at) = t.detected_s {
                markers.push((
                    at,
                    format!("cycle {}: detected {} down", t.cycle, t.from),
                    "detection",
                ));
            }
        }
        markers.retain(|m| m.2 != "detection" || m.1.starts_with("cycle "));
    }
    markers.sort_by(|a, b| a.0.total_cmp(&b.0));
    markers
        .into_iter()
        .enumerate()
        .map(|(i, (at_s, label, class))| ChartMarker {
            number: i + 1,
            at_s,
            label,
            class,
        })
        .collect()
}

fn timeline_svg(report: &Report, markers: &[ChartMarker]) -> String {
    let t = &report.timeline;
    let n = t.buckets.len().max(1) as f64;
    let span_s = n * t.interval_ms as f64 / 1000.0;
    let plot_w = CHART_W - LEFT - RIGHT;
    let plot_h = CHART_H - TOP - BOTTOM;
    let max = t
        .buckets
        .iter()
        .map(|b| b.successes + b.failures + b.inside_successes)
        .max()
        .unwrap_or(0)
        .max(1);
    let y_max = nice_ceiling(max);
    let x = |s: f64| LEFT + (s / span_s).clamp(0.0, 1.0) * plot_w;
    let y = |v: f64| TOP + plot_h - v / y_max as f64 * plot_h;
    let bar_w = (plot_w / n).max(1.0);

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {CHART_W} {CHART_H}" width="100%" role="img" aria-label="checkouts per interval" xmlns="http://www.w3.org/2000/svg">"#
    );
    // Shaded gaps: where the front door acknowledged nothing.
    for gap in &report.unavailable_gaps {
        let from = (gap.from_ms - t.start_ms) as f64 / 1000.0;
        let to = (gap.to_ms - t.start_ms) as f64 / 1000.0;
        let _ = write!(
            svg,
            r#"<rect class="gap" x="{:.1}" y="{TOP}" width="{:.1}" height="{plot_h}"><title>no acknowledged write for {:.2} s</title></rect>"#,
            x(from),
            (x(to) - x(from)).max(1.0),
            to - from
        );
    }
    // Grid and y axis.
    for i in 0..=4 {
        let v = y_max as f64 * i as f64 / 4.0;
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT + plot_w,
            y(v),
            y(v),
            LEFT - 6.0,
            y(v) + 4.0,
            v.round()
        );
    }
    // Stacked bars: successes through the front door, successes inside the region, failed attempts.
    for b in &t.buckets {
        let bx = x(b.t_s);
        let mut base = 0.0;
        for (count, class) in [
            (b.successes, "ok"),
            (b.inside_successes, "inside"),
            (b.failures, "fail"),
        ] {
            if count == 0 {
                continue;
            }
            let top = base + count as f64;
            let _ = write!(
                svg,
                r#"<rect class="{class}" x="{bx:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{:.1} s: {count} {}</title></rect>"#,
                y(top),
                (bar_w - 0.5).max(0.5),
                y(base) - y(top),
                b.t_s,
                match class {
                    "ok" => "acknowledged (front door)",
                    "inside" => "acknowledged (inside the region)",
                    _ => "failed attempts",
                }
            );
            base = top;
        }
    }
    // X axis with ticks at whole seconds (every few seconds on long drills).
    let step = [1.0, 2.0, 5.0, 10.0, 30.0, 60.0]
        .into_iter()
        .find(|s| span_s / s <= 12.0)
        .unwrap_or(120.0);
    let mut tick = 0.0;
    while tick <= span_s + 1e-9 {
        let _ = write!(
            svg,
            r#"<line class="axisline" x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}"/><text class="axis" x="{0:.1}" y="{3:.1}" text-anchor="middle">{4}s</text>"#,
            x(tick),
            TOP + plot_h,
            TOP + plot_h + 4.0,
            TOP + plot_h + 18.0,
            tick
        );
        tick += step;
    }
    let _ = write!(
        svg,
        r#"<line class="axisline" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/>"#,
        LEFT + plot_w,
        TOP + plot_h,
        TOP + plot_h
    );
    // Markers: a line through the plot and a numbered badge above it; badges that would collide are
    // stacked upwards.
    let mut last_badge_x: Vec<f64> = Vec::new();
    for m in markers {
        let mx = x(m.at_s);
        let row = last_badge_x
            .iter()
            .rposition(|&px| (mx - px).abs() < 16.0)
            .map(|r| r + 1)
            .unwrap_or(0);
        if row >= last_badge_x.len() {
            last_badge_x.push(mx);
        } else {
            last_badge_x[row] = mx;
        }
        let by = TOP - 10.0 + row as f64 * 18.0;
        let bx = mx;
        let _ = write!(
            svg,
            r#"<g class="marker {class}"><title>{label} at {at:.2} s</title><line x1="{mx:.1}" x2="{mx:.1}" y1="{TOP}" y2="{:.1}"/><circle cx="{bx:.1}" cy="{by:.1}" r="8"/><text x="{bx:.1}" y="{:.1}" text-anchor="middle">{n}</text></g>"#,
            TOP + plot_h,
            by + 3.5,
            class = m.class,
            label = escape(&m.label),
            at = m.at_s,
            n = m.number,
        );
    }
    let _ = write!(
        svg,
        r#"<text class="axis" x="12" y="{:.1}" transform="rotate(-90 12 {:.1})" text-anchor="middle">per {} ms</text></svg>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        t.interval_ms
    );
    svg
}

fn nice_ceiling(v: u32) -> u32 {
    let mut magnitude = 1;
    while magnitude * 10 < v {
        magnitude *= 10;
    }
    [1, 2, 5, 10]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&c| c >= v)
        .unwrap_or(v)
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:24px auto;max-width:1060px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#5a6272;margin:0 0 16px}
.verdict{display:inline-block;padding:3px 12px;border-radius:4px;font-weight:700;color:#fff;margin-left:8px;font-size:15px;vertical-align:2px}
.verdict.pass{background:#1f8a4c}.verdict.fail{background:#c0392b}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px;margin:16px 0}
.card{border:1px solid #d8dce4;border-radius:6px;padding:10px 12px}
.card .k{color:#5a6272;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:600}
.card.bad{border-color:#c0392b;background:#fdf0ee}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e3e6ec;vertical-align:top}
th{font-weight:600;color:#3b4252;background:#f5f6f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.met{color:#1f8a4c;font-weight:600}.missed{color:#c0392b;font-weight:600}
.legend span{display:inline-block;margin-right:16px}.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin-right:5px}
svg .ok{fill:#3a9d5d}svg .inside{fill:#8e6fc1}svg .fail{fill:#d9534f}svg .gap{fill:#f6d7d3;opacity:.7}
svg .grid{stroke:#eceef2}svg .axisline{stroke:#8a92a3}svg .axis{font-size:11px;fill:#5a6272}
svg .marker line{stroke-width:1.2;stroke-dasharray:4 3}svg .marker text{font-size:10px;font-weight:700;fill:#fff}
svg .marker.step line{stroke:#2f6db5}svg .marker.step circle{fill:#2f6db5}
svg .marker.fault line{stroke:#c0392b;stroke-dasharray:none;stroke-width:2}svg .marker.fault circle{fill:#c0392b}
svg .marker.detection line{stroke:#e08e0b}svg .marker.detection circle{fill:#e08e0b}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
ul.notes li{margin:4px 0}
"#;

pub fn render(report: &Report) -> String {
    let markers = chart_markers(report);
    let pass = report.verdict == Verdict::Pass;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>lifeboat drill: {sc} — {verdict}</title><style>{STYLE}</style></head><body>",
        sc = report.scenario,
        verdict = if pass { "pass" } else { "fail" }
    );
    let _ = write!(
        h,
        "<h1>Drill: {sc}<span class=\"verdict {cls}\">{verdict}</span></h1><p class=\"sub\">{fault} · {start} → {end} · replication <b>{repl}</b> · load {rate}/s for {dur} s · automatic failover {auto} · primary {before} → {after}</p>",
        sc = report.scenario,
        cls = if pass { "pass" } else { "fail" },
        verdict = if pass { "PASS" } else { "FAIL" },
        fault = escape(&report.fault.label),
        start = escape(&report.started_at),
        end = escape(&report.finished_at),
        repl = report.replication,
        rate = report.load.rate_per_s,
        dur = report.load.duration_s,
        auto = if report.automatic_failover_allowed {
            "allowed"
        } else {
            "not allowed"
        },
        before = escape(&report.primary_before),
        after = escape(report.primary_after.as_deref().unwrap_or("?")),
    );

    let card = |k: &str, v: String, bad: bool| {
        format!(
            "<div class=\"card{}\"><div class=\"k\">{}</div><div class=\"v\">{}</div></div>",
            if bad { " bad" } else { "" },
            k,
            v
        )
    };
    h.push_str("<div class=\"cards\">");
    h.push_str(&card(
        "acknowledged",
        report.acknowledged.to_string(),
        false,
    ));
    h.push_str(&card("lost", report.lost.to_string(), report.lost > 0));
    h.push_str(&card(
        "duplicates",
        report.duplicates.to_string(),
        report.duplicates > 0,
    ));
    h.push_str(&card(
        "accepted after fence",
        report.writes_accepted_after_fence.to_string(),
        report.writes_accepted_after_fence > 0,
    ));
    h.push_str(&card("detection", secs(report.detection_s), false));
    h.push_str(&card("RTO", secs(report.rto_s), report.rto_s.is_none()));
    h.push_str(&card(
        "writes unavailable",
        format!("{:.2} s", report.write_unavailable_s),
        false,
    ));
    h.push_str(&card(
        "lines mismatched",
        report.lines_mismatched.to_string(),
        report.lines_mismatched > 0,
    ));
    h.push_str("</div>");

    h.push_str("<h2>Timeline</h2><div class=\"legend\"><span><i class=\"sw\" style=\"background:#3a9d5d\"></i>acknowledged via front door</span>");
    if report.acknowledged_inside_region > 0 || report.load.inside_rate_per_s.is_some() {
        h.push_str("<span><i class=\"sw\" style=\"background:#8e6fc1\"></i>acknowledged inside the isolated region</span>");
    }
    h.push_str("<span><i class=\"sw\" style=\"background:#d9534f\"></i>failed attempts</span><span><i class=\"sw\" style=\"background:#f6d7d3\"></i>no acknowledged write (&gt; 250 ms)</span></div>");
    h.push_str(&timeline_svg(report, &markers));

    h.push_str("<table><tr><th>#</th><th>at</th><th>event</th></tr>");
    for m in &markers {
        let _ = write!(
            h,
            "<tr><td class=\"num\">{}</td><td class=\"num\">{:.2} s</td><td>{}</td></tr>",
            m.number,
            m.at_s,
            escape(&m.label)
        );
    }
    h.push_str("</table>");

    if !report.transitions.is_empty() {
        h.push_str("<h2>Cycles</h2><table><tr><th>cycle</th><th>move</th><th>cause</th><th>from → to</th><th>start</th><th>detected</th><th>recovered</th><th>RTO</th><th>ledger after the cycle</th></tr>");
        for t in &report.transitions {
            let _ = write!(
                h,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{} → {}</td><td class=\"num\">{:.2} s</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                t.cycle,
                escape(&t.kind),
                escape(&t.cause),
                escape(&t.from),
                escape(&t.to),
                t.started_s,
                secs(t.detected_s),
                secs(t.recovered_s),
                secs(t.rto_s),
                t.ledger_check
                    .as_ref()
                    .map(|c| format!(
                        "{} acknowledged, lost {}, duplicates {}, after fence {}",
                        c.acknowledged, c.lost, c.duplicates, c.writes_accepted_after_fence
                    ))
                    .unwrap_or_default()
            );
        }
        h.push_str("</table>");
        if let Some(soak) = &report.soak {
            let _ = write!(
                h,
                "<p>Soak: {} of {} cycles, seed {}. RTO of the role changes: min {}, median {}, p90 {}, max {}. Moves: {}.</p>",
                soak.cycles_completed,
                soak.cycles_requested,
                soak.seed,
                secs(soak.rto_min_s),
                secs(soak.rto_p50_s),
                secs(soak.rto_p90_s),
                secs(soak.rto_max_s),
                escape(
                    &soak
                        .moves
                        .iter()
                        .map(|(m, n)| format!("{m} ×{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            );
        }
        if let Some(r) = report.replicating_at_end {
            let _ = write!(
                h,
                "<p>Both regions replicating at the end: <b>{}</b>.</p>",
                if r { "yes" } else { "no" }
            );
        }
    }
    if !report.set_aside.is_empty() {
        h.push_str("<h2>Set aside by reprotect</h2><p>Transactions a returning old primary held that the surviving primary never had. They were saved before the server was rebuilt; review them and replay what should be kept (docs/orchestrator.md, \"Reprotect\").</p><ul>");
        for f in &report.set_aside {
            let _ = write!(h, "<li>{}</li>", escape(&f.summary));
        }
        h.push_str("</ul>");
    }

    if !report.targets.is_empty() {
        h.push_str("<h2>Targets</h2><table><tr><th>target</th><th>limit</th><th>measured</th><th></th></tr>");
        for t in &report.targets {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                escape(&t.name),
                escape(&t.limit),
                escape(&t.measured),
                if t.met { "met" } else { "missed" },
                if t.met { "met" } else { "missed" }
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Runbook steps</h2>");
    if report.runbooks.is_empty() {
        h.push_str("<p>No runbook ran during the drill.</p>");
    }
    for run in &report.runbooks {
        let _ = write!(
            h,
            "<p><b>{}</b> <span class=\"mono\">{}</span> — {} (started at {:.2} s{})</p><table><tr><th>step</th><th>start</th><th>end</th><th>duration</th><th>outcome</th></tr>",
            escape(&run.runbook),
            escape(&run.run_id),
            escape(&run.outcome),
            run.started_s,
            run.ended_s
                .map(|e| format!(", ended at {e:.2} s"))
                .unwrap_or_default()
        );
        for s in &run.steps {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"num\">{:.2} s</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                escape(&s.name),
                s.started_s,
                secs(s.ended_s),
                s.duration_s
                    .map(|d| format!("{:.0} ms", d * 1000.0))
                    .unwrap_or_else(|| "—".into()),
                escape(&s.outcome)
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Figures</h2><table>");
    let mut row = |k: &str, v: String| {
        let _ = write!(h, "<tr><th>{}</th><td>{}</td></tr>", k, v);
    };
    row("scenario", report.scenario.to_string());
    row("replication", report.replication.to_string());
    row(
        "checkouts started",
        report.load.checkouts_started.to_string(),
    );
    row("acknowledged", report.acknowledged.to_string());
    row(
        "acknowledged by region",
        report
            .acknowledged_by_region
            .iter()
            .map(|(r, n)| format!("{} {}", escape(r), n))
            .collect::<Vec<_>>()
            .join(", "),
    );
    if report.load.inside_rate_per_s.is_some() {
        row(
            "acknowledged to the client inside the region",
            report.acknowledged_inside_region.to_string(),
        );
    }
    row(
        "failed attempts (retried)",
        report.attempts_failed.to_string(),
    );
    row(
        "checkouts abandoned (never acknowledged)",
        report.checkouts_abandoned.to_string(),
    );
    if let Some(peaks) = report.load.client_peaks {
        row(
            "client's peak in flight (checkouts / requests)",
            format!(
                "{} / {}",
                peaks.checkouts_in_flight, peaks.requests_in_flight
            ),
        );
    }
    row(
        "fence",
        report
            .fence
            .map(|f| {
                format!(
                    "epoch {} from {:.2} s",
                    f.epoch,
                    (f.at_ms - report.timeline.start_ms) as f64 / 1000.0
                )
            })
            .unwrap_or_else(|| "—".into()),
    );
    row(
        "epoch",
        format!(
            "{} → {}",
            report.epoch_before,
            report
                .epoch_after
                .map(|e| e.to_string())
                .unwrap_or_else(|| "?".into())
        ),
    );
    row(
        "ledger",
        format!(
            "<span class=\"mono\">{}</span>",
            escape(&report.ledger_file)
        ),
    );
    for (name, keys) in [
        ("lost keys", &report.lost_keys),
        ("duplicate keys", &report.duplicate_keys),
        ("keys with altered lines", &report.lines_mismatched_keys),
        ("keys accepted after the fence", &report.after_fence_keys),
    ] {
        if !keys.is_empty() {
            row(
                name,
                format!(
                    "<span class=\"mono\">{}</span>",
                    keys.iter().map(|k| escape(k)).collect::<Vec<_>>().join(" ")
                ),
            );
        }
    }
    h.push_str("</table>");

    if !report.notes.is_empty() {
        h.push_str("<h2>Notes</h2><ul class=\"notes\">");
        for n in &report.notes {
            let _ = write!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul>");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_characters() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn nice_ceiling_rounds_up_to_1_2_5() {
        assert_eq!(
            [1, 3, 7, 11, 40, 99, 101].map(nice_ceiling),
            [1, 5, 10, 20, 50, 100, 200]
        );
    }
}

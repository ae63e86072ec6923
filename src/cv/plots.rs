//! Results as pictures, in SVG (text, no dependency): loss per epoch, one line per fold or
//! model, and a grid's mean score ± std per point. `wgpu-mlp fit --plots DIR` writes both.

use std::fmt::Write as _;

use crate::cv::CvReport;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 400.0;
/// Plot area: left, top, right, bottom margins.
const MARGIN: (f64, f64, f64, f64) = (70.0, 40.0, 190.0, 50.0);
/// Line colours, cycled (colour-blind-safe Okabe–Ito).
const COLOURS: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
];

/// One named line: a value per epoch (epoch 1 first).
pub struct Series {
    /// The legend's text.
    pub name: String,
    /// The values, epoch 1 first; non-finite ones are left out.
    pub values: Vec<f32>,
    /// Dashed (say, validation against training).
    pub dashed: bool,
}

/// A line chart of loss per epoch, one line per series, as an SVG document. The loss axis is
/// logarithmic where every value is positive and they span more than a factor of 10 (a
/// training loss falls by orders of magnitude).
///
/// ```
/// use wgpu_mlp::cv::plots::{Series, loss_curves_svg};
/// let train = Series { name: "train".into(), values: vec![1.0, 0.5, 0.3], dashed: false };
/// let svg = loss_curves_svg("digits", &[train]);
/// assert!(svg.starts_with("<svg") && svg.contains("train"));
/// ```
pub fn loss_curves_svg(title: &str, series: &[Series]) -> String {
    let finite = |s: &Series| s.values.iter().copied().filter(|v| v.is_finite()).collect::<Vec<f32>>();
    let all: Vec<f32> = series.iter().flat_map(finite).collect();
    let epochs = series.iter().map(|s| s.values.len()).max().unwrap_or(1).max(2);
    let (smallest, largest) = all
        .iter()
        .fold((f32::INFINITY, 0.0f32), |(s, l), &v| (s.min(v), l.max(v)));
    let log = smallest > 0.0 && largest > 10.0 * smallest;
    let at = move |v: f32| if log { (v as f64).log10() } else { v as f64 };
    let shown: Vec<f32> = all.iter().map(|&v| at(v) as f32).collect();
    let (low, high) = range(&shown);
    let (x, to_pixel) = scales((1.0, epochs as f64), (low, high));
    let y = |v: f64| to_pixel(if log { v.log10() } else { v });
    let mut svg = frame(title, "epoch", if log { "loss (log scale)" } else { "loss" });
    axes(&mut svg, (1.0, epochs as f64), (low, high), &x, &to_pixel, log);
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(e, &v)| format!("{:.1},{:.1}", x(e as f64 + 1.0), y(v as f64)))
            .collect();
        let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dash} points="{}"/>"#,
            points.join(" ")
        );
        legend(&mut svg, i, colour, s.dashed, &s.name);
    }
    svg + "</svg>\n"
}

/// A search's mean fold score per grid point with ± one standard deviation, best first, as
/// an SVG document.
pub fn grid_scores_svg(title: &str, report: &CvReport) -> String {
    let mut rows: Vec<_> = report.results.iter().collect();
    rows.sort_by_key(|r| r.rank);
    let spans: Vec<f32> = rows.iter().flat_map(|r| [r.mean - r.std, r.mean + r.std]).collect();
    let (low, high) = range(&spans);
    let n = rows.len().max(1) as f64;
    let (x, y) = scales((0.0, n), (low, high));
    let label = format!("mean {} ± std", report.scoring.name());
    let mut svg = frame(title, "grid point, best first (rank)", &label);
    axes(&mut svg, (0.0, 0.0), (low, high), &x, &y, false);
    for (i, r) in rows.iter().enumerate() {
        let centre = x(i as f64 + 0.5);
        let (top, bottom) = (y((r.mean + r.std) as f64), y((r.mean - r.std) as f64));
        let _ = writeln!(
            svg,
            r#"<line x1="{centre:.1}" x2="{centre:.1}" y1="{top:.1}" y2="{bottom:.1}" stroke="{}"/>"#,
            COLOURS[0]
        );
        let _ = writeln!(
            svg,
            r#"<circle cx="{centre:.1}" cy="{:.1}" r="3.5" fill="{}"><title>{}</title></circle>"#,
            y(r.mean as f64),
            COLOURS[0],
            escape(&format!("rank {}: {:.4} ± {:.4}, {}", r.rank, r.mean, r.std, r.params))
        );
        if rows.len() <= 30 {
            let _ = writeln!(
                svg,
                r#"<text x="{centre:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
                HEIGHT - MARGIN.3 + 14.0,
                r.rank
            );
        }
    }
    let best = rows.first().map(|r| r.params.to_string()).unwrap_or_default();
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="10">best: {}</text>"#,
        MARGIN.0,
        MARGIN.1 - 8.0,
        escape(&best)
    );
    svg + "</svg>\n"
}

/// The low and high ends of the values, padded by 5% (a flat line gets ±1% or ±1).
fn range(values: &[f32]) -> (f64, f64) {
    let low = values.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    let high = values.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    if !low.is_finite() || !high.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if high > low {
        (high - low) * 0.05
    } else {
        low.abs().max(1.0) * 0.01
    };
    (low - pad, high + pad)
}

/// Data to pixel coordinates over the plot area.
fn scales((x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> (impl Fn(f64) -> f64, impl Fn(f64) -> f64) {
    let (left, top, right, bottom) = MARGIN;
    let x = move |v: f64| left + (v - x0) / (x1 - x0) * (WIDTH - left - right);
    let y = move |v: f64| HEIGHT - bottom - (v - y0) / (y1 - y0) * (HEIGHT - top - bottom);
    (x, y)
}

fn frame(title: &str, x_label: &str, y_label: &str) -> String {
    let (left, _, right, bottom) = MARGIN;
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="{:.1}" y="20" font-size="14" text-anchor="middle">{}</text>
<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>
<text x="16" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>
"#,
        (left + WIDTH - right) / 2.0,
        escape(title),
        (left + WIDTH - right) / 2.0,
        HEIGHT - bottom + 36.0,
        escape(x_label),
        HEIGHT / 2.0,
        HEIGHT / 2.0,
        escape(y_label)
    )
}

/// The plot area's box, five y ticks (labelled 10^v on a log axis), and x ticks at whole
/// epochs (none when x1 is 0).
fn axes(
    svg: &mut String,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    x: &impl Fn(f64) -> f64,
    y: &impl Fn(f64) -> f64,
    log: bool,
) {
    let (left, top, right, bottom) = MARGIN;
    let _ = writeln!(
        svg,
        r##"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="#888"/>"##,
        WIDTH - left - right,
        HEIGHT - top - bottom
    );
    for i in 0..=4 {
        let v = y0 + (y1 - y0) * i as f64 / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{}</text>"#,
            left - 6.0,
            y(v) + 3.0,
            tick(if log { 10f64.powf(v) } else { v })
        );
    }
    if x1 > 0.0 {
        let step = ((x1 - x0) / 8.0).ceil().max(1.0);
        let mut v = x0;
        while v <= x1 {
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{v}</text>"#,
                x(v),
                HEIGHT - bottom + 14.0
            );
            v += step;
        }
    }
}

fn legend(svg: &mut String, i: usize, colour: &str, dashed: bool, name: &str) {
    let (x, y) = (WIDTH - MARGIN.2 + 12.0, MARGIN.1 + 14.0 + 16.0 * i as f64);
    let dash = if dashed { r#" stroke-dasharray="6 4""# } else { "" };
    let _ = writeln!(
        svg,
        r#"<line x1="{x}" x2="{:.1}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
        x + 22.0,
        x + 28.0,
        y + 4.0,
        escape(name)
    );
}

fn tick(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.2}"),
        a if a >= 0.001 || a == 0.0 => format!("{v:.3}"),
        _ => format!("{v:.1e}"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines go through their points (first and last epochs at the plot area's edges, the
    /// lowest and highest values within it), text is escaped, and an empty or flat series
    /// still draws.
    #[test]
    fn curves_land_inside_the_plot_area() {
        let series = [
            Series {
                name: "a<b".into(),
                values: vec![2.0, 1.0, 0.5],
                dashed: false,
            },
            Series {
                name: "flat".into(),
                values: vec![0.5; 3],
                dashed: true,
            },
        ];
        let svg = loss_curves_svg("t & u", &series);
        assert!(svg.contains("a&lt;b") && svg.contains("t &amp; u"));
        let (left, right) = (MARGIN.0, WIDTH - MARGIN.2);
        let first = svg.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
        let xs: Vec<f64> = first
            .split(' ')
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert!((xs[0] - left).abs() < 0.1 && (xs[2] - right).abs() < 0.1, "{xs:?}");
        let ys: Vec<f64> = first
            .split(' ')
            .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(ys.iter().all(|&y| y > MARGIN.1 && y < HEIGHT - MARGIN.3), "{ys:?}");
        assert!(ys[0] < ys[2], "the higher loss is drawn higher");
        assert!(loss_curves_svg("none", &[]).ends_with("</svg>\n"));
        let falling = Series {
            name: "x".into(),
            values: vec![10.0, 1.0, 0.01],
            dashed: false,
        };
        assert!(loss_curves_svg("log", &[falling]).contains("loss (log scale)"));
    }
}

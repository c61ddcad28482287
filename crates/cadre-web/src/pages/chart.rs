//! The command center's chart, drawn as SVG on the server: executions per
//! day as bars (failures stacked in red) and cost as a line.

use super::model::Day;
use crate::view::money;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 160.0;
const TOP: f64 = 12.0;

pub struct Bar {
    pub x: String,
    pub width: String,
    /// The whole bar (all executions).
    pub y: String,
    pub height: String,
    /// The failed part, at the bar's foot.
    pub failed_y: String,
    pub failed_height: String,
    /// Short day label (`03`) and the full tooltip.
    pub label: String,
    pub title: String,
}

pub struct Chart {
    pub bars: Vec<Bar>,
    /// `x,y x,y …` for the cost line; empty when nothing was spent.
    pub cost_line: String,
    pub max_executions: i64,
    pub max_cost: String,
    /// For screen readers: the series in words.
    pub summary: String,
}

impl Chart {
    pub fn of_days(days: &[Day]) -> Chart {
        let n = days.len().max(1) as f64;
        let slot = WIDTH / n;
        let max_executions = days.iter().map(|d| d.executions).max().unwrap_or(0).max(1);
        let costs: Vec<f64> = days
            .iter()
            .map(|d| d.cost_usd.parse().unwrap_or(0.0))
            .collect();
        let max_cost = costs.iter().copied().fold(0.0, f64::max);
        let scale = |v: f64, max: f64| (HEIGHT - TOP) * v / max;
        let bars = days
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let h = scale(d.executions as f64, max_executions as f64);
                let fh = scale(d.failed as f64, max_executions as f64);
                Bar {
                    x: format!("{:.1}", i as f64 * slot + slot * 0.15),
                    width: format!("{:.1}", slot * 0.7),
                    y: format!("{:.1}", HEIGHT - h),
                    height: format!("{h:.1}"),
                    failed_y: format!("{:.1}", HEIGHT - fh),
                    failed_height: format!("{fh:.1}"),
                    label: d.date.get(8..10).unwrap_or_default().to_owned(),
                    title: format!(
                        "{}: {} executions, {} failed, {} tokens, {}",
                        d.date,
                        d.executions,
                        d.failed,
                        d.tokens,
                        money(&d.cost_usd)
                    ),
                }
            })
            .collect();
        let cost_line = if max_cost > 0.0 {
            costs
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    format!(
                        "{:.1},{:.1}",
                        i as f64 * slot + slot / 2.0,
                        HEIGHT - scale(*c, max_cost)
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            String::new()
        };
        let total: i64 = days.iter().map(|d| d.executions).sum();
        let failed: i64 = days.iter().map(|d| d.failed).sum();
        Chart {
            bars,
            cost_line,
            max_executions,
            max_cost: money(&max_cost.to_string()),
            summary: format!(
                "{total} executions over {} days, {failed} failed; the busiest day had {max_executions}",
                days.len()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, executions: i64, failed: i64, cost: &str) -> Day {
        Day {
            date: date.to_owned(),
            executions,
            failed,
            tokens: 0,
            cost_usd: cost.to_owned(),
        }
    }

    #[test]
    fn the_busiest_day_fills_the_height() {
        let chart = Chart::of_days(&[day("2026-12-02", 2, 1, "0.5"), day("2026-12-03", 4, 0, "1")]);
        assert_eq!(chart.bars[1].height, format!("{:.1}", HEIGHT - TOP));
        assert_eq!(chart.bars[0].height, format!("{:.1}", (HEIGHT - TOP) / 2.0));
        assert_eq!(
            chart.bars[0].failed_height,
            format!("{:.1}", (HEIGHT - TOP) / 4.0)
        );
        assert_eq!(chart.bars[1].label, "03");
        assert!(chart.cost_line.starts_with("160.0,"));
        assert!(chart.summary.contains("6 executions over 2 days, 1 failed"));
    }

    #[test]
    fn an_idle_fortnight_draws_no_cost_line() {
        let chart = Chart::of_days(&[day("2026-12-03", 0, 0, "0")]);
        assert!(chart.cost_line.is_empty());
        assert_eq!(chart.bars[0].height, "0.0");
    }
}

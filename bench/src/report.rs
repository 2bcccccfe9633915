//! Collects figures across repetitions and prints the table (medians and tidelog's lead
//! over each system) and the JSON form.

use crate::stats::median;
use crate::workloads::Figure;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One row's key: the workload case and metric, in run order (cases as first run,
/// metrics as the workload lists them).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RowKey {
    order: usize,
    case: String,
    metric_order: usize,
    metric: &'static str,
}

#[derive(Debug, Default)]
struct Row {
    unit: &'static str,
    higher_is_better: bool,
    samples: BTreeMap<&'static str, Vec<f64>>,
}

/// Every figure measured, by case, metric and system.
#[derive(Debug, Default)]
pub struct Results {
    rows: BTreeMap<RowKey, Row>,
    cases: Vec<String>,
    /// (case, system) → the first error, for systems that failed a case.
    failed: BTreeMap<(String, &'static str), String>,
}

/// One (case, metric, system) result in the JSON output.
#[derive(Debug, Serialize)]
pub struct JsonRow {
    /// Workload case, e.g. `w1 256B`.
    pub case: String,
    /// Metric name.
    pub metric: &'static str,
    /// Unit of the values.
    pub unit: &'static str,
    /// Whether more is better.
    pub higher_is_better: bool,
    /// System name.
    pub system: &'static str,
    /// One value per repetition.
    pub samples: Vec<f64>,
    /// Their median.
    pub median: f64,
    /// How far tidelog is ahead of this system (above 1: tidelog better), on medians.
    pub tidelog_lead: Option<f64>,
}

impl Results {
    /// Records the figures of one run of `system` on `case`.
    pub fn add(&mut self, case: &str, system: &'static str, figures: Vec<Figure>) {
        let order = match self.cases.iter().position(|c| c == case) {
            Some(i) => i,
            None => {
                self.cases.push(case.to_owned());
                self.cases.len() - 1
            }
        };
        for (metric_order, f) in figures.into_iter().enumerate() {
            let key = RowKey {
                order,
                case: case.to_owned(),
                metric_order,
                metric: f.metric,
            };
            let row = self.rows.entry(key).or_default();
            row.unit = f.unit;
            row.higher_is_better = f.higher_is_better;
            row.samples.entry(system).or_default().push(f.value);
        }
    }

    /// Records that `system` failed `case` (its figures, if any, are not comparable).
    pub fn fail(&mut self, case: &str, system: &'static str, error: String) {
        self.failed
            .entry((case.to_owned(), system))
            .or_insert(error);
    }

    /// Every failure as `(case, system, error)`.
    #[must_use]
    pub fn failures(&self) -> Vec<(String, &'static str, String)> {
        self.failed
            .iter()
            .map(|((case, system), error)| (case.clone(), *system, error.clone()))
            .collect()
    }

    /// Every row for the JSON output.
    #[must_use]
    pub fn json_rows(&self) -> Vec<JsonRow> {
        let mut out = Vec::new();
        for (key, row) in &self.rows {
            let reference = row.samples.get("tidelog").and_then(|s| median(s));
            for (system, samples) in &row.samples {
                let value = median(samples).unwrap_or(f64::NAN);
                out.push(JsonRow {
                    case: key.case.clone(),
                    metric: key.metric,
                    unit: row.unit,
                    higher_is_better: row.higher_is_better,
                    system,
                    samples: samples.clone(),
                    median: value,
                    tidelog_lead: reference.map(|t| lead(t, value, row.higher_is_better)),
                });
            }
        }
        out
    }

    /// The plain table: one line per case and metric, one column per system, each cell
    /// the median and tidelog's lead over that system.
    #[must_use]
    pub fn table(&self, systems: &[&'static str]) -> String {
        let mut out = String::new();
        let mut header = format!("{:<18} {:<12} {:<6}", "case", "metric", "unit");
        for s in systems {
            let _ = write!(header, " {s:>22}");
        }
        let _ = writeln!(out, "{header}");
        for (key, row) in &self.rows {
            let reference = row.samples.get("tidelog").and_then(|s| median(s));
            let mut line = format!("{:<18} {:<12} {:<6}", key.case, key.metric, row.unit);
            for s in systems {
                let failed = self.failed.contains_key(&(key.case.clone(), *s));
                let cell = match row.samples.get(s).and_then(|v| median(v)) {
                    _ if failed => "FAILED".to_owned(),
                    None => "-".to_owned(),
                    Some(v) if *s == "tidelog" => format_value(v),
                    Some(v) => match reference {
                        Some(t) => {
                            format!(
                                "{} ({:.2}x)",
                                format_value(v),
                                lead(t, v, row.higher_is_better)
                            )
                        }
                        None => format_value(v),
                    },
                };
                let _ = write!(line, " {cell:>22}");
            }
            let _ = writeln!(out, "{line}");
        }
        for ((case, system), error) in &self.failed {
            let _ = writeln!(out, "FAILED {case} on {system}: {error}");
        }
        for (case, ratio) in self.worst_over_group_commit() {
            let _ = writeln!(
                out,
                "worst latency, {case}: tidelog's is {ratio:.2}x the naive group commit's (goal: at most {WORST_LATENCY_GOAL}x)"
            );
        }
        out.push_str("(Nx) = tidelog's lead over that system on medians: above 1 tidelog is better, below 1 behind.\n");
        out
    }
}

/// The most tidelog's worst latency may be, as a multiple of the naive group commit's in
/// the same run (issue 14).
pub const WORST_LATENCY_GOAL: f64 = 1.5;

impl Results {
    /// For every case where both tidelog and the naive group commit have a worst latency
    /// (`max` or `batch max`): tidelog's median worst over the group commit's.
    #[must_use]
    pub fn worst_over_group_commit(&self) -> Vec<(String, f64)> {
        self.rows
            .iter()
            .filter(|(key, _)| key.metric == "max" || key.metric == "batch max")
            .filter_map(|(key, row)| {
                let tidelog = row.samples.get("tidelog").and_then(|s| median(s))?;
                let naive = row.samples.get("group-commit").and_then(|s| median(s))?;
                Some((key.case.clone(), tidelog / naive))
            })
            .collect()
    }
}

/// tidelog's lead: the other's value over tidelog's where lower is better, the inverse
/// where higher is better; above 1 means tidelog is better.
#[must_use]
pub fn lead(tidelog: f64, other: f64, higher_is_better: bool) -> f64 {
    if higher_is_better {
        tidelog / other
    } else {
        other / tidelog
    }
}

fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(metric: &'static str, value: f64, higher: bool) -> Figure {
        Figure {
            metric,
            value,
            unit: "x",
            higher_is_better: higher,
        }
    }

    #[test]
    fn the_lead_is_above_one_exactly_when_tidelog_is_better() {
        assert!(lead(100.0, 50.0, true) > 1.0);
        assert!(lead(100.0, 50.0, false) < 1.0);
        assert!((lead(10.0, 30.0, false) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_table_reports_medians_of_repetitions_and_the_lead() {
        let mut results = Results::default();
        for (t, o) in [(10.0, 30.0), (12.0, 36.0), (99.0, 1.0)] {
            results.add("w1 256B", "tidelog", vec![f("p50", t, false)]);
            results.add("w1 256B", "other", vec![f("p50", o, false)]);
        }
        let table = results.table(&["tidelog", "other"]);
        assert!(table.contains("12.0"), "{table}");
        assert!(table.contains("30.0 (2.50x)"), "{table}");
        let json = results.json_rows();
        assert_eq!(json.len(), 2);
        assert_eq!(json[0].samples.len(), 3);
    }

    #[test]
    fn the_table_says_how_tidelogs_worst_latency_compares_to_the_naive_group_commit() {
        let mut results = Results::default();
        results.add("w1 256B", "tidelog", vec![f("max", 30.0, false)]);
        results.add("w1 256B", "group-commit", vec![f("max", 20.0, false)]);
        results.add("w3 batch", "tidelog", vec![f("batch max", 2.0, false)]);
        results.add("w3 batch", "group-commit", vec![f("batch max", 4.0, false)]);
        results.add("w3 batch", "tidelog", vec![f("batch p50", 9.0, false)]);
        results.add("w3 batch", "group-commit", vec![f("batch p50", 1.0, false)]);
        let ratios = results.worst_over_group_commit();
        assert_eq!(
            ratios,
            [("w1 256B".to_owned(), 1.5), ("w3 batch".to_owned(), 0.5)]
        );
        let table = results.table(&["tidelog", "group-commit"]);
        assert!(table.contains("w1 256B: tidelog's is 1.50x"), "{table}");
    }

    #[test]
    fn the_table_lists_a_workloads_metrics_in_the_order_the_workload_gives_them() {
        let mut results = Results::default();
        let figures = vec![f("p50", 1.0, false), f("max", 9.0, false)];
        results.add("w1 256B", "tidelog", figures);
        let table = results.table(&["tidelog"]);
        let p50 = table.find("p50").unwrap();
        assert!(p50 < table.find("max").unwrap(), "{table}");
    }

    #[test]
    fn a_system_that_failed_a_case_shows_failed_not_a_figure() {
        let mut results = Results::default();
        results.add("w5 recover torn", "tidelog", vec![f("open", 5.0, false)]);
        results.add("w5 recover torn", "other", vec![f("open", 1.0, false)]);
        results.fail("w5 recover torn", "other", "crc check failed".to_owned());
        let table = results.table(&["tidelog", "other"]);
        assert!(table.contains("FAILED"), "{table}");
        assert!(!table.contains("1.00 ("), "{table}");
        assert!(table.contains("crc check failed"), "{table}");
    }
}

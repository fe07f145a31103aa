//! The result table: each figure beside the limit it is measured against.

/// How to read the ratio (and check the target).
#[derive(Debug, Clone, Copy)]
pub enum Better {
    /// A rate: ratio = value / limit, shown as a percentage.
    Higher,
    /// A time or a size: ratio = value / limit, shown as a multiple.
    Lower,
}

pub struct Row {
    pub what: String,
    pub value: String,
    pub limit: String,
    /// value / limit, when there is a limit.
    pub ratio: Option<f64>,
    pub better: Better,
    /// The target, in words, and whether it is met.
    pub target: Option<(String, bool)>,
}

impl Row {
    pub fn new(what: impl Into<String>, value: impl Into<String>) -> Row {
        Row {
            what: what.into(),
            value: value.into(),
            limit: "—".into(),
            ratio: None,
            better: Better::Higher,
            target: None,
        }
    }

    pub fn limit(mut self, limit: impl Into<String>, ratio: f64, better: Better) -> Row {
        self.limit = limit.into();
        self.ratio = Some(ratio);
        self.better = better;
        self
    }

    pub fn target(mut self, text: impl Into<String>, met: bool) -> Row {
        self.target = Some((text.into(), met));
        self
    }
}

pub fn print(rows: &[Row]) {
    println!("| measurement | result | limit it is measured against (same machine, same run) | ratio | target | met |");
    println!("|---|---:|---|---:|---|:-:|");
    for r in rows {
        let ratio = match (r.ratio, r.better) {
            (None, _) => "—".to_string(),
            (Some(x), Better::Higher) => format!("{:.0}%", 100.0 * x),
            (Some(x), Better::Lower) => format!("{x:.2}×"),
        };
        let (target, met) = match &r.target {
            None => ("—".to_string(), "".to_string()),
            Some((t, m)) => (t.clone(), if *m { "yes" } else { "**no**" }.to_string()),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.what, r.value, r.limit, ratio, target, met
        );
    }
}

/// 123456.7 -> "123,457".
pub fn int(x: f64) -> String {
    let s = format!("{:.0}", x);
    let (sign, digits) = s.split_at(if s.starts_with('-') { 1 } else { 0 });
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn ms(secs: f64) -> String {
    format!("{:.0} ms", secs * 1000.0)
}

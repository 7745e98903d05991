//! Contract lines: what a company's contracts cover, and their CSV form.
//! Pure: rows in, checked lines (or the line and field at fault) out.

use serde::{Deserialize, Serialize};

/// The kinds of contract line; `emaintenance` makes its product an
/// eMaintenance product (meter readings by the agent) while it runs.
pub const CONTRACT_KINDS: [&str; 5] = ["maintenance", "emaintenance", "rental", "lease", "service"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContractLine {
    pub account: String,
    pub contract_number: String,
    pub item: String,
    /// The product it covers, or
    #[serde(default)]
    pub serial: Option<String>,
    /// the service it covers.
    #[serde(default)]
    pub service: Option<String>,
    /// One of `CONTRACT_KINDS`.
    pub kind: String,
    /// YYYY-MM-DD.
    pub starts_on: String,
    /// YYYY-MM-DD, inclusive; None: open-ended.
    #[serde(default)]
    pub ends_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContractLine {
    pub id: i64,
    #[serde(flatten)]
    pub line: NewContractLine,
}

fn date(field: &str, v: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{field} {v:?}: give a date as YYYY-MM-DD"))
}

impl NewContractLine {
    /// The line with its fields trimmed, or what is wrong with it.
    pub fn checked(&self) -> Result<NewContractLine, String> {
        let t = |v: &str| v.trim().to_string();
        let opt = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let l = NewContractLine {
            account: t(&self.account),
            contract_number: t(&self.contract_number),
            item: t(&self.item),
            serial: opt(&self.serial),
            service: opt(&self.service),
            kind: t(&self.kind).to_lowercase(),
            starts_on: t(&self.starts_on),
            ends_on: opt(&self.ends_on),
        };
        for (field, v) in [
            ("account", &l.account),
            ("contract_number", &l.contract_number),
            ("item", &l.item),
        ] {
            if v.is_empty() || v.chars().count() > 100 {
                return Err(format!("{field}: give 1 to 100 characters"));
            }
        }
        if l.serial.is_some() == l.service.is_some() {
            return Err(
                "a line covers either a product (serial) or a service, not both or neither".into(),
            );
        }
        if !CONTRACT_KINDS.contains(&l.kind.as_str()) {
            return Err(format!(
                "kind {:?}: give one of {}",
                l.kind,
                CONTRACT_KINDS.join(", ")
            ));
        }
        if l.kind == "emaintenance" && l.serial.is_none() {
            return Err("an emaintenance line covers a product: give serial".into());
        }
        let start = date("starts_on", &l.starts_on)?;
        if let Some(end) = &l.ends_on {
            if date("ends_on", end)? < start {
                return Err(format!("ends_on {end} is before starts_on {}", l.starts_on));
            }
        }
        Ok(l)
    }

    /// Whether the line runs on `day` (YYYY-MM-DD compares as text).
    pub fn runs_on(&self, day: &str) -> bool {
        self.starts_on.as_str() <= day && self.ends_on.as_deref().is_none_or(|e| day <= e)
    }
}

/// The header a contract-lines CSV file has (in any column order).
pub const CSV_COLUMNS: [&str; 7] = [
    "contract_number",
    "item",
    "serial",
    "service",
    "kind",
    "starts_on",
    "ends_on",
];

/// Parses a CSV file of `account`'s contract lines: a header naming the
/// columns, then one line per row. Every row is checked; the first bad one
/// is named by its line number, and nothing is taken.
pub fn parse_csv(account: &str, text: &str) -> Result<Vec<NewContractLine>, String> {
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = r.headers().map_err(|e| format!("line 1: {e}"))?.clone();
    let col = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    for required in ["contract_number", "item", "kind", "starts_on"] {
        if col(required).is_none() {
            return Err(format!(
                "line 1: no column {required:?}; the header names {}",
                CSV_COLUMNS.join(",")
            ));
        }
    }
    if let Some(extra) = header
        .iter()
        .find(|h| !CSV_COLUMNS.iter().any(|c| c.eq_ignore_ascii_case(h)))
    {
        return Err(format!(
            "line 1: unknown column {extra:?}; the columns are {}",
            CSV_COLUMNS.join(",")
        ));
    }
    let mut out = Vec::new();
    for (i, row) in r.records().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| format!("line {line}: {e}"))?;
        let get = |name: &str| col(name).and_then(|c| row.get(c)).unwrap_or("").to_string();
        let some = |name: &str| Some(get(name)).filter(|v| !v.is_empty());
        let l = NewContractLine {
            account: account.to_string(),
            contract_number: get("contract_number"),
            item: get("item"),
            serial: some("serial"),
            service: some("service"),
            kind: get("kind"),
            starts_on: get("starts_on"),
            ends_on: some("ends_on"),
        }
        .checked()
        .map_err(|e| format!("line {line}: {e}"))?;
        out.push(l);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> NewContractLine {
        NewContractLine {
            account: "acme".into(),
            contract_number: "C-100".into(),
            item: "10".into(),
            serial: Some("A-1".into()),
            service: None,
            kind: "eMaintenance".into(),
            starts_on: "2026-01-01".into(),
            ends_on: Some("2026-12-31".into()),
        }
    }

    #[test]
    fn lines_are_checked() {
        let ok = line().checked().unwrap();
        assert_eq!(ok.kind, "emaintenance");
        assert!(ok.runs_on("2026-06-30") && ok.runs_on("2026-12-31"));
        assert!(!ok.runs_on("2027-01-01") && !ok.runs_on("2025-12-31"));
        let bad = |f: fn(&mut NewContractLine)| {
            let mut l = line();
            f(&mut l);
            l.checked().unwrap_err()
        };
        assert!(bad(|l| l.service = Some("helpdesk".into())).contains("not both"));
        assert!(bad(|l| l.serial = None).contains("neither"));
        assert!(bad(|l| l.kind = "gift".into()).contains("kind"));
        assert!(bad(|l| l.starts_on = "1/1/2026".into()).contains("YYYY-MM-DD"));
        assert!(bad(|l| l.ends_on = Some("2025-01-01".into())).contains("before"));
        assert!(bad(|l| l.item = " ".into()).contains("item"));
    }

    #[test]
    fn csv_rows_become_lines_or_the_bad_line_is_named() {
        let text = "contract_number,item,serial,service,kind,starts_on,ends_on\n\
                    C-100,10,A-1,,emaintenance,2026-01-01,\n\
                    C-100,20,,\"Helpdesk, 8-18\",service,2026-01-01,2026-12-31\n";
        let lines = parse_csv("acme", text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].ends_on, None);
        assert_eq!(lines[1].service.as_deref(), Some("Helpdesk, 8-18"));
        let bad = "contract_number,item,serial,kind,starts_on\nC-1,1,A-1,maintenance,2026-01-01\nC-1,2,A-2,maintenance,2026-13-01\n";
        assert_eq!(
            parse_csv("acme", bad).unwrap_err(),
            "line 3: starts_on \"2026-13-01\": give a date as YYYY-MM-DD"
        );
        assert!(parse_csv("acme", "item,kind\n")
            .unwrap_err()
            .contains("contract_number"));
        assert!(
            parse_csv("acme", "contract_number,item,kind,starts_on,price\n")
                .unwrap_err()
                .contains("price")
        );
    }
}

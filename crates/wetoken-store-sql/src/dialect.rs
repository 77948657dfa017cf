//! The few pieces of SQL whose syntax differs between the databases: the
//! placeholders, the database's clock, and the WeChat day on it. Every
//! other difference is substituted in [`crate::statements`].

/// A database's dialect of SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Sqlite,
    MySql,
    Postgres,
    Oracle,
}

/// The database's current time in epoch milliseconds, as an SQL
/// expression: every instance compares leases on one clock.
pub fn db_now_ms(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        Dialect::MySql => "CAST(UNIX_TIMESTAMP(CURRENT_TIMESTAMP(3)) * 1000 AS SIGNED)",
        Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        Dialect::Oracle => {
            "((CAST(SYS_EXTRACT_UTC(SYSTIMESTAMP) AS DATE) - DATE '1970-01-01') * 86400000 \
             + TO_NUMBER(TO_CHAR(SYSTIMESTAMP, 'FF3')))"
        }
    }
}

/// The WeChat day (00:00 +08:00) the database's clock is in, as a whole
/// number of days since the epoch: the day of the forced-refresh cap.
pub fn db_wechat_day(d: Dialect) -> String {
    let now = db_now_ms(d);
    match d {
        // Integer arithmetic divides as integers here.
        Dialect::Sqlite | Dialect::Postgres => format!("(({now}) + 28800000) / 86400000"),
        Dialect::MySql => format!("(({now}) + 28800000) DIV 86400000"),
        Dialect::Oracle => format!("FLOOR((({now}) + 28800000) / 86400000)"),
    }
}

/// Rewrites `?` placeholders as `{prefix}1`, `{prefix}2`, ….
pub(crate) fn number_placeholders(sql: &str, prefix: char) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push(prefix);
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// `INSERT … ` of one row into `table` unless a row with the same `keys`
/// exists (then nothing). Binds: the keys in order, then whatever `?`
/// the other columns' value expressions hold, in order; `others` are
/// `(column, value expression)`.
pub fn insert_if_absent(d: Dialect, table: &str, keys: &[&str], others: &[(&str, &str)]) -> String {
    let all: Vec<&str> = keys.iter().copied().chain(others.iter().map(|(c, _)| *c)).collect();
    let columns = all.join(", ");
    let values: Vec<&str> = keys.iter().map(|_| "?").chain(others.iter().map(|(_, v)| *v)).collect();
    let values = values.join(", ");
    match d {
        Dialect::Sqlite | Dialect::Postgres => {
            format!("INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING")
        }
        Dialect::MySql => format!("INSERT IGNORE INTO {table} ({columns}) VALUES ({values})"),
        Dialect::Oracle => {
            let using: Vec<String> = keys.iter().map(|k| format!("? {k}")).collect();
            let on: Vec<String> = keys.iter().map(|k| format!("t.{k} = s.{k}")).collect();
            let values: Vec<String> = keys
                .iter()
                .map(|k| format!("s.{k}"))
                .chain(others.iter().map(|(_, v)| (*v).to_owned()))
                .collect();
            format!(
                "MERGE INTO {table} t USING (SELECT {} FROM dual) s ON ({}) \
                 WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({})",
                using.join(", "),
                on.join(" AND "),
                values.join(", ")
            )
        }
    }
}

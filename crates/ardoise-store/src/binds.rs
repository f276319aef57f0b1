//! Ids bound to a query instead of written into its text.
//!
//! A query whose text carries a person's ids is a statement of its own:
//! each connection prepares it afresh (as much CPU as running it) and it
//! pushes the others out of the connection's statement cache.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

/// Values bound to a query whose text is built piece by piece: each piece
/// takes the next placeholders, so they first appear in increasing order
/// (see the crate's documentation).
pub(crate) struct Binds {
    pub(crate) next: usize,
    pub(crate) values: Vec<i64>,
}

impl Binds {
    /// Placeholders from `$first` on.
    pub(crate) fn from(first: usize) -> Binds {
        Binds {
            next: first,
            values: Vec::new(),
        }
    }

    /// The placeholder of one value.
    pub(crate) fn one(&mut self, value: i64) -> String {
        self.values.push(value);
        self.next += 1;
        format!("${}", self.next - 1)
    }

    /// Placeholders for `ids`, padded with -1 (which no id matches) to a
    /// power of two: the query's text depends on how many ids there are,
    /// rounded up, not on which (see the module's documentation).
    pub(crate) fn list(&mut self, ids: impl IntoIterator<Item = i64>) -> String {
        let mut ids: Vec<i64> = ids.into_iter().collect();
        ids.resize(ids.len().max(1).next_power_of_two(), -1);
        ids.into_iter()
            .map(|id| self.one(id))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The query `sql` with the values bound, in order.
    pub(crate) fn query(self, sql: &str) -> Query<'_, Any, AnyArguments<'_>> {
        bound(sql, self.values)
    }
}

/// The query `sql` with `values` bound, in order.
pub(crate) fn bound(sql: &str, values: Vec<i64>) -> Query<'_, Any, AnyArguments<'_>> {
    bind_all(sqlx::query(sql), values)
}

/// `query` with `values` bound next, in order.
pub(crate) fn bind_all<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    values: Vec<i64>,
) -> Query<'q, Any, AnyArguments<'q>> {
    values
        .into_iter()
        .fold(query, |query, value| query.bind(value))
}

/// The placeholders' numbers in `sql`, in the order they first appear
/// (for tests: SQLite needs them increasing).
#[cfg(test)]
pub(crate) fn first_appearances(sql: &str) -> Vec<usize> {
    let mut seen = Vec::new();
    for part in sql.split('$').skip(1) {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse() {
            if !seen.contains(&n) {
                seen.push(n);
            }
        }
    }
    seen
}

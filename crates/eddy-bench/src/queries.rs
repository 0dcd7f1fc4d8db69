//! The Nexmark queries in eddy's dialect, compiled in from `bench/nexmark/qN.sql` (each
//! file opens with a comment mapping it to the original query).

use crate::error::BenchError;
use crate::generator::Kind;

/// One Nexmark query: its name and ASA text, and the event kinds it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NexmarkQuery {
    /// `q0` … `q11`.
    pub name: &'static str,
    /// The query text, header comment included.
    pub sql: &'static str,
    /// The inputs the query reads, in the order the peers' runners expect.
    pub inputs: &'static [Kind],
}

macro_rules! query {
    ($name:literal, $inputs:expr) => {
        NexmarkQuery {
            name: $name,
            sql: include_str!(concat!("../../../bench/nexmark/", $name, ".sql")),
            inputs: $inputs,
        }
    };
}

/// Every query, in Nexmark order.
pub const QUERIES: [NexmarkQuery; 9] = [
    query!("q0", &[Kind::Bid]),
    query!("q1", &[Kind::Bid]),
    query!("q2", &[Kind::Bid]),
    query!("q3", &[Kind::Person, Kind::Auction]),
    query!("q4", &[Kind::Auction, Kind::Bid]),
    query!("q5", &[Kind::Bid]),
    query!("q7", &[Kind::Bid]),
    query!("q8", &[Kind::Person, Kind::Auction]),
    query!("q11", &[Kind::Bid]),
];

/// Looks a query up by name (`q5` or `Q5`).
pub fn query(name: &str) -> Result<&'static NexmarkQuery, BenchError> {
    QUERIES
        .iter()
        .find(|q| q.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| BenchError::UnknownQuery(name.to_string()))
}

/// Queries named in a comma-separated list; `all` or an empty list means every query.
pub fn select(list: &str) -> Result<Vec<&'static NexmarkQuery>, BenchError> {
    let list = list.trim();
    if list.is_empty() || list.eq_ignore_ascii_case("all") {
        return Ok(QUERIES.iter().collect());
    }
    list.split(',').map(|n| query(n.trim())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_file_maps_itself_to_the_original_and_writes_output() {
        for q in &QUERIES {
            assert!(
                q.sql.starts_with(&format!("-- Nexmark {}", q.name)),
                "{}",
                q.name
            );
            assert!(
                q.sql.contains("-- Original"),
                "{} has no mapping note",
                q.name
            );
            assert!(q.sql.contains("INTO output"), "{}", q.name);
        }
    }

    #[test]
    fn lists_select_queries_by_name_and_reject_unknown_ones() {
        let names: Vec<&str> = select("Q11, q0")
            .expect("known")
            .iter()
            .map(|q| q.name)
            .collect();
        assert_eq!(names, ["q11", "q0"]);
        assert_eq!(select("all").expect("all").len(), 9);
        assert!(matches!(select("q6"), Err(BenchError::UnknownQuery(n)) if n == "q6"));
    }
}

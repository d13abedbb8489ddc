//! sqlite topic id -> connection index, looked up once per row of every scan and window.
//!
//! rosbag2 numbers topics 1, 2, 3...: a table indexed by id answers without hashing. Ids
//! that are negative or far apart (a file written by another tool) fall back to a map.

use std::collections::HashMap;

/// Ids below this are looked up in the table.
const TABLE_LIMIT: i64 = 1 << 16;

#[derive(Debug, Default)]
pub struct TopicIds {
    table: Vec<Option<usize>>,
    map: HashMap<i64, usize>,
}

impl TopicIds {
    /// Maps `id` to `conn`; false (and nothing changed) when `id` is already mapped.
    pub fn insert(&mut self, id: i64, conn: usize) -> bool {
        if self.get(id).is_some() {
            return false;
        }
        if (0..TABLE_LIMIT).contains(&id) {
            let i = id as usize;
            if self.table.len() <= i {
                self.table.resize(i + 1, None);
            }
            self.table[i] = Some(conn);
        } else {
            self.map.insert(id, conn);
        }
        true
    }

    pub fn get(&self, id: i64) -> Option<usize> {
        if (0..TABLE_LIMIT).contains(&id) {
            self.table.get(id as usize).copied().flatten()
        } else {
            self.map.get(&id).copied()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_map_ids_are_found_and_duplicates_refused() {
        let mut ids = TopicIds::default();
        for (id, conn) in [(1, 0), (3, 1), (-5, 2), (1 << 40, 3), (0, 4)] {
            assert!(ids.insert(id, conn));
        }
        assert!(!ids.insert(3, 9));
        assert!(!ids.insert(1 << 40, 9));
        assert_eq!(ids.get(1), Some(0));
        assert_eq!(ids.get(3), Some(1));
        assert_eq!(ids.get(-5), Some(2));
        assert_eq!(ids.get(1 << 40), Some(3));
        assert_eq!(ids.get(0), Some(4));
        assert_eq!(ids.get(2), None);
        assert_eq!(ids.get(1 << 20), None);
    }
}

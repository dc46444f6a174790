//! Dotted versions (`17.4.1`, `10.0.22631`, `14`), compared numerically part by part, a missing
//! part counting as 0 (`17.4` = `17.4.0`).

use std::cmp::Ordering;

pub fn parse(text: &str) -> Option<Vec<u64>> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    text.split('.').map(|p| p.parse::<u64>().ok()).collect()
}

pub fn compare(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| a.get(i).copied().unwrap_or(0).cmp(&b.get(i).copied().unwrap_or(0)))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// Both parse and `a` is below `b`.
pub fn below(a: &str, b: &str) -> Option<bool> {
    Some(compare(&parse(a)?, &parse(b)?) == Ordering::Less)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(below("9.3", "10.0"), Some(true));
        assert_eq!(below("17.4", "17.4.0"), Some(false));
        assert_eq!(below("17.4.0", "17.4"), Some(false));
        assert_eq!(below("10.0.19045", "10.0.22631"), Some(true));
        assert_eq!(below("15.6", "15.10"), Some(true));
        assert_eq!(below("14", "13.9.9"), Some(false));
        for bad in ["", "1..2", "v17", "17.x", "1.2.3 beta"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}

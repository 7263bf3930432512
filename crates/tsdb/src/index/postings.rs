//! Postings lists (sorted series references) and the set operations matchers need.

/// Intersection of sorted lists; smallest list first, galloping through the others.
pub fn intersect(mut lists: Vec<Vec<u32>>) -> Vec<u32> {
    if lists.is_empty() {
        return Vec::new();
    }
    lists.sort_by_key(Vec::len);
    let mut iter = lists.into_iter();
    let mut acc = iter.next().unwrap_or_default();
    for other in iter {
        if acc.is_empty() {
            break;
        }
        acc = intersect_two(&acc, &other);
    }
    acc
}

/// Intersection of two sorted lists, galloping in the longer one.
pub fn intersect_two(small: &[u32], large: &[u32]) -> Vec<u32> {
    let (small, large) = if small.len() <= large.len() {
        (small, large)
    } else {
        (large, small)
    };
    let mut out = Vec::with_capacity(small.len());
    let mut lo = 0usize;
    for &x in small {
        // Exponential search from `lo`: afterwards x, if present, lies in [lo, end).
        let mut bound = 1usize;
        while lo + bound < large.len() && large[lo + bound] < x {
            bound *= 2;
        }
        let end = (lo + bound + 1).min(large.len());
        match large[lo..end].binary_search(&x) {
            Ok(i) => {
                out.push(x);
                lo += i + 1;
            }
            Err(i) => lo += i,
        }
        if lo >= large.len() {
            break;
        }
    }
    out
}

/// Union of sorted lists, deduplicated.
pub fn union(lists: Vec<Vec<u32>>) -> Vec<u32> {
    match lists.len() {
        0 => Vec::new(),
        1 => lists.into_iter().next().unwrap_or_default(),
        _ => {
            let total: usize = lists.iter().map(Vec::len).sum();
            let mut out = Vec::with_capacity(total);
            for l in lists {
                out.extend(l);
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

/// Elements of `a` not in `b` (both sorted).
pub fn without(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn set() -> impl Strategy<Value = BTreeSet<u32>> {
        proptest::collection::btree_set(0u32..500, 0..120)
    }

    proptest! {
        #[test]
        fn ops_match_sets(a in set(), b in set(), c in set()) {
            let v = |s: &BTreeSet<u32>| s.iter().copied().collect::<Vec<u32>>();
            let want: Vec<u32> = a.intersection(&b).copied().collect::<BTreeSet<_>>().intersection(&c).copied().collect();
            prop_assert_eq!(intersect(vec![v(&a), v(&b), v(&c)]), want);
            let want: Vec<u32> = a.union(&b).copied().collect::<BTreeSet<_>>().union(&c).copied().collect();
            prop_assert_eq!(union(vec![v(&a), v(&b), v(&c)]), want);
            let want: Vec<u32> = a.difference(&b).copied().collect();
            prop_assert_eq!(without(&v(&a), &v(&b)), want);
            let want: Vec<u32> = a.intersection(&b).copied().collect();
            prop_assert_eq!(intersect_two(&v(&a), &v(&b)), want);
        }
    }
}

//! Text forms of native histograms that Prometheus shows to users.

use hypnos_model::FloatHistogram;

use crate::histogram_ops::all_buckets;

/// Go's `%g` for a float64 (shortest representation).
pub fn go_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..21).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// `FloatHistogram.String()`: `{count:…, sum:…, [lo,hi):n, …}`.
pub fn to_string(h: &FloatHistogram) -> String {
    let mut s = format!("{{count:{}, sum:{}", go_g(h.count), go_g(h.sum));
    for b in all_buckets(h) {
        if b.count == 0.0 {
            continue;
        }
        let zero =
            b.lower_inclusive && b.lower < 0.0 && b.upper > 0.0 && h.zero_count > 0.0 && b.upper == h.zero_threshold;
        let open = if b.lower_inclusive { '[' } else { '(' };
        let close = if zero || !b.lower_inclusive { ']' } else { ')' };
        s.push_str(&format!(
            ", {open}{},{}{close}:{}",
            go_g(b.lower),
            go_g(b.upper),
            go_g(b.count)
        ));
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_g_forms() {
        assert_eq!(go_g(1e-5), "1e-05");
        assert_eq!(go_g(0.001), "0.001");
        assert_eq!(go_g(20.0), "20");
        assert_eq!(go_g(1e21), "1e+21");
    }
}

//! The decision at a bar's close: which tokens to hold and how many units.

/// Fills `picks` with the columns of the top `top_k` eligible tokens by
/// score, best first (ties: lower column first). Eligible: a finite score
/// `>= min_score` and a finite close.
pub(crate) fn top_k(
    score: &[f64],
    close: &[f64],
    min_score: f64,
    top_k: usize,
    picks: &mut Vec<usize>,
) {
    picks.clear();
    picks.extend(
        (0..score.len())
            .filter(|&a| score[a].is_finite() && score[a] >= min_score && close[a].is_finite()),
    );
    // Stable sort on score alone keeps ties in column order.
    picks.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    picks.truncate(top_k);
}

/// Target units per asset: equal weights over `picks` of `equity`, sized at
/// `close`, floored with `whole_units`; 0 for every other asset.
pub(crate) fn targets(
    picks: &[usize],
    close: &[f64],
    equity: f64,
    whole_units: bool,
    out: &mut [f64],
) {
    out.fill(0.0);
    if picks.is_empty() {
        return;
    }
    let budget = equity / picks.len() as f64;
    for &a in picks {
        let units = budget / close[a];
        out[a] = if whole_units { units.floor() } else { units };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_the_lower_column_and_ineligible_tokens_are_skipped() {
        let nan = f64::NAN;
        // Column 1 has the best score but no close; 0, 3 and 4 tie at 70;
        // 2 is below min_score 50; 5 has no score.
        let score = [70.0, 99.0, 40.0, 70.0, 70.0, nan];
        let close = [1.0, nan, 1.0, 1.0, 1.0, 1.0];
        let mut picks = Vec::new();
        top_k(&score, &close, 50.0, 2, &mut picks);
        assert_eq!(picks, vec![0, 3]);
        top_k(&score, &close, 50.0, 10, &mut picks);
        assert_eq!(picks, vec![0, 3, 4]);
        top_k(&score, &close, 80.0, 3, &mut picks);
        assert!(picks.is_empty());
    }

    #[test]
    fn targets_split_equity_equally_and_floor_whole_units() {
        let close = [2.0, 3.0, 5.0];
        let mut out = [9.0; 3];
        // 1200 / 2 = 600 per token: 300 units at 2, 120 at 5.
        targets(&[0, 2], &close, 1200.0, false, &mut out);
        assert_eq!(out, [300.0, 0.0, 120.0]);
        // 1000 / 2 = 500: 500 / 3 = 166.67 -> 166; 500 / 5 = 100.
        targets(&[1, 2], &close, 1000.0, true, &mut out);
        assert_eq!(out, [0.0, 166.0, 100.0]);
    }
}

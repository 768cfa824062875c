use super::*;
use crate::indicators::testing::{close_enough, make_inputs};

/// The five bar fields of a random walk, `n` bars.
fn bars(n: usize, seed: u64) -> Vec<Vec<f64>> {
    make_inputs(&INPUTS, n, seed)
}

fn fields(b: &[Vec<f64>]) -> [&[f64]; 5] {
    [&b[0], &b[1], &b[2], &b[3], &b[4]]
}

fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Every registered kernel whose inputs are bar fields, with its defaults
/// and an alias (so no two columns clash), plus a few non-default members.
fn everything() -> Vec<MemberDef> {
    let mut defs: Vec<MemberDef> = indicators::all()
        .filter(|s| s.inputs.iter().all(|i| default_input(i).is_some()))
        .map(|s| MemberDef::new(s.name).alias(&format!("{}_d", s.name)))
        .collect();
    defs.push(MemberDef::new("sma").param("timeperiod", 5.0));
    defs.push(
        MemberDef::new("ema")
            .param("timeperiod", 3.0)
            .alias("vol_ema")
            .input("real", "volume"),
    );
    defs.push(MemberDef::new("atr").param("timeperiod", 7.0));
    defs
}

/// Each member's columns from its kernel run alone on the same series.
fn one_by_one(bundle: &Bundle, b: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = b[0].len();
    let mut cols = Vec::new();
    for m in bundle.members() {
        let ins: Vec<&[f64]> = m.inputs.iter().map(|&k| b[k].as_slice()).collect();
        let mut outs = vec![vec![0.0; n]; m.spec.outputs.len()];
        let mut refs: Vec<&mut [f64]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
        m.spec.run_series(&ins, &m.params, &mut refs);
        cols.extend(outs);
    }
    cols
}

#[test]
fn a_bundle_equals_its_members_one_by_one_bitwise() {
    let bundle = Bundle::new(&everything()).unwrap();
    for (n, seed) in [(0, 1), (1, 2), (3, 3), (40, 4), (700, 5)] {
        let mut b = bars(n, seed);
        if n > 100 {
            b[2][n / 3] = f64::NAN; // a gap in low only
            b[3][n / 2] = f64::INFINITY;
        }
        let mut outs = vec![vec![0.0; n]; bundle.columns().len()];
        let mut refs: Vec<&mut [f64]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
        bundle.run_series(&fields(&b), &mut refs);
        let want = one_by_one(&bundle, &b);
        for (c, (got, want)) in outs.iter().zip(&want).enumerate() {
            assert!(same(got, want), "column {} n={n}", bundle.columns()[c]);
        }
    }
}

#[test]
fn many_series_right_aligned_equal_one_at_a_time() {
    let bundle = Bundle::new(&everything()).unwrap();
    let data: Vec<Vec<Vec<f64>>> = [300, 0, 17, 299, 300]
        .iter()
        .enumerate()
        .map(|(i, &n)| bars(n, 10 + i as u64))
        .collect();
    let series: Vec<[&[f64]; 5]> = data.iter().map(|b| fields(b)).collect();
    let width = bundle.check_many(&series).unwrap();
    assert_eq!(width, 300);
    let nc = bundle.columns().len();
    let mut outs = vec![vec![0.0; series.len() * width]; nc];
    let mut refs: Vec<&mut [f64]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
    bundle.run_many(&series, width, &mut refs);
    for (i, b) in data.iter().enumerate() {
        let n = b[0].len();
        let want = one_by_one(&bundle, b);
        for c in 0..nc {
            let row = &outs[c][i * width..(i + 1) * width];
            assert!(row[..width - n].iter().all(|v| v.is_nan()));
            assert!(same(&row[width - n..], &want[c]), "series {i} column {c}");
        }
    }
}

#[test]
fn ragged_inputs_within_a_series_are_refused() {
    let bundle = Bundle::new(&[MemberDef::new("atr")]).unwrap();
    let b = bars(10, 1);
    let short = &b[3][..9];
    let err = bundle
        .check_many(&[[&[], &b[1], &b[2], short, &[]]])
        .unwrap_err()
        .to_string();
    assert!(err.contains("series 0") && err.contains("close"), "{err}");
    // open and volume are not needed: their lengths do not matter.
    assert_eq!(
        bundle.check_many(&[[&[], &b[1], &b[2], &b[3], &[1.0]]]),
        Ok(10)
    );
}

#[test]
fn columns_are_named_after_outputs_and_aliases() {
    let b = Bundle::new(&[
        MemberDef::new("sma"),
        MemberDef::new("sma").param("timeperiod", 5.0).alias("fast"),
        MemberDef::new("atr"),
    ])
    .unwrap();
    assert_eq!(b.columns(), ["sma", "fast", "atr"]);
    assert_eq!(b.needed(), [false, true, true, true, false]);
    // Multi-output kernels (whichever exist): output names, alias-prefixed.
    for spec in indicators::all().filter(|s| s.outputs.len() > 1) {
        if !spec.inputs.iter().all(|i| default_input(i).is_some()) {
            continue;
        }
        let plain = Bundle::new(&[MemberDef::new(spec.name)]).unwrap();
        assert_eq!(plain.columns(), spec.outputs);
        let aliased = Bundle::new(&[MemberDef::new(spec.name).alias("x")]).unwrap();
        let want: Vec<String> = spec.outputs.iter().map(|o| format!("x_{o}")).collect();
        assert_eq!(aliased.columns(), want);
        assert!(Bundle::new(&[MemberDef::new(spec.name), MemberDef::new(spec.name)]).is_err());
    }
}

fn err(defs: &[MemberDef]) -> String {
    match Bundle::new(defs) {
        Ok(_) => panic!("accepted {defs:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_members_are_refused_with_a_reason() {
    let dup = err(&[MemberDef::new("sma"), MemberDef::new("sma")]);
    assert!(dup.contains("\"sma\"") && dup.contains("alias"), "{dup}");
    let dup = err(&[MemberDef::new("sma").alias("atr"), MemberDef::new("atr")]);
    assert!(dup.contains("\"atr\""), "{dup}");
    assert!(err(&[MemberDef::new("nope")]).contains("no indicator named \"nope\""));
    let e = err(&[MemberDef::new("sma").param("period", 3.0)]);
    assert!(e.contains("no parameter \"period\""), "{e}");
    let e = err(&[MemberDef::new("sma").param("timeperiod", 0.0)]);
    assert!(e.contains("timeperiod: must be"), "{e}");
    let e = err(&[MemberDef::new("sma")
        .param("timeperiod", 3.0)
        .param("timeperiod", 4.0)]);
    assert!(e.contains("given twice"), "{e}");
    let e = err(&[MemberDef::new("sma").input("real", "vwap")]);
    assert!(e.contains("\"vwap\""), "{e}");
    let e = err(&[MemberDef::new("sma").input("high", "high")]);
    assert!(e.contains("no input \"high\""), "{e}");
}

#[test]
fn a_missing_input_is_named_with_its_readers() {
    let b = Bundle::new(&[MemberDef::new("sma"), MemberDef::new("atr")]).unwrap();
    let e = b
        .check_given([false, true, true, false, false])
        .unwrap_err()
        .to_string();
    assert_eq!(e, "close: is needed by sma, atr but was not given");
    assert!(b.check_given([false, true, true, true, false]).is_ok());
}

#[test]
fn defs_rebuild_the_same_bundle() {
    let b = Bundle::new(&everything()).unwrap();
    let again = Bundle::new(&b.defs()).unwrap();
    assert_eq!(b.columns(), again.columns());
    assert_eq!(b.defs(), again.defs());
}

/// Members with an incremental form, for the state tests.
fn stateful() -> Vec<MemberDef> {
    everything()
        .into_iter()
        .filter(|d| indicators::find(&d.kernel).unwrap().new_state.is_some())
        .collect()
}

#[test]
fn states_equal_their_members_updated_alone_and_the_batch() {
    let bundle = Bundle::new(&stateful()).unwrap();
    let nc = bundle.columns().len();
    let n_sym = 3;
    let n = 200;
    let data: Vec<Vec<Vec<f64>>> = (0..n_sym).map(|s| bars(n, 30 + s)).collect();
    let mut data = data;
    data[1][3][80] = f64::NAN; // a gap in symbol 1's close
    let want_batch: Vec<Vec<Vec<f64>>> = data.iter().map(|b| one_by_one(&bundle, b)).collect();
    let mut set = BundleStates::new(bundle, n_sym as usize).unwrap();
    // Each member's own state, updated one at a time, as the reference.
    let mut alone: Vec<Vec<StateBox>> = (0..n_sym)
        .map(|_| {
            set.bundle()
                .members()
                .iter()
                .map(|m| m.spec.new_state(&m.params).unwrap())
                .collect()
        })
        .collect();
    let ids: Vec<i64> = vec![2, 0, 1];
    let mut out = vec![0.0; ids.len() * nc];
    let mut peeked = vec![0.0; ids.len() * nc];
    for t in 0..n {
        if t == n / 2 {
            set = BundleStates::load(&set.save()).unwrap();
        }
        let f: Vec<Vec<f64>> = (0..5)
            .map(|k| ids.iter().map(|&s| data[s as usize][k][t]).collect())
            .collect();
        let inputs = fields(&f);
        set.peek(&ids, &inputs, &mut peeked).unwrap();
        set.peek(&ids, &inputs, &mut peeked).unwrap(); // peek changes nothing
        set.update(&ids, &inputs, &mut out).unwrap();
        assert!(same(&peeked, &out), "peek != update at bar {t}");
        for (j, &s) in ids.iter().enumerate() {
            let s = s as usize;
            let row = &out[j * nc..(j + 1) * nc];
            for (m, state) in set.bundle().members().iter().zip(&mut alone[s]) {
                let bar: Vec<f64> = m.inputs.iter().map(|&k| data[s][k][t]).collect();
                let mut o = vec![0.0; m.spec.outputs.len()];
                state.update(&bar, &mut o);
                assert!(same(&row[m.column..m.column + o.len()], &o), "bar {t}");
            }
            for (c, v) in row.iter().enumerate() {
                let w = want_batch[s][c][t];
                assert!(
                    close_enough(*v, w, 1e-12),
                    "sym {s} col {c} bar {t}: {v} != {w}"
                );
            }
        }
    }
}

#[test]
fn bad_ids_and_lengths_change_nothing() {
    let bundle = Bundle::new(&[MemberDef::new("ema").param("timeperiod", 2.0)]).unwrap();
    let mut set = BundleStates::new(bundle, 2).unwrap();
    let before = set.save();
    let x = [1.0, 2.0];
    let mut out = [0.0; 2];
    let none: &[f64] = &[];
    let e = set
        .update(&[0i32, 2], &[none, none, none, &x, none], &mut out)
        .unwrap_err();
    assert_eq!(e.to_string(), "ids: ids[1] is 2, not a symbol id (0..2)");
    let e = set
        .update(&[-1i64, 0], &[none, none, none, &x, none], &mut out)
        .unwrap_err();
    assert!(e.to_string().contains("ids[0] is -1"), "{e}");
    let e = set
        .update(&[0i32, 1], &[none, none, none, &x[..1], none], &mut out)
        .unwrap_err();
    assert!(e
        .to_string()
        .starts_with("close must have the same length as ids"));
    let e = set
        .update(&[0i32, 1], &[none, none, none, &x, none], &mut out[..1])
        .unwrap_err();
    assert!(e.to_string().starts_with("out:"), "{e}");
    assert_eq!(set.save(), before);
}

#[test]
fn add_symbols_reset_and_repeated_ids() {
    let bundle = Bundle::new(&[MemberDef::new("sma").param("timeperiod", 2.0)]).unwrap();
    let mut set = BundleStates::new(bundle, 1).unwrap();
    assert_eq!(set.add_symbols(2), 1);
    assert_eq!(set.n_symbols(), 3);
    let none: &[f64] = &[];
    let mut out = [0.0; 3];
    // Symbol 1 listed twice takes two bars, in order.
    set.update(
        &[1u32, 1, 2],
        &[none, none, none, &[1.0, 3.0, 5.0], none],
        &mut out,
    )
    .unwrap();
    assert!(out[0].is_nan() && out[1] == 2.0 && out[2].is_nan());
    set.reset(&[1u32]).unwrap();
    set.update(&[1u32], &[none, none, none, &[7.0], none], &mut out[..1])
        .unwrap();
    assert!(out[0].is_nan(), "reset forgets the bars");
    assert!(set.reset(&[3u32]).is_err());
}

#[test]
fn members_without_state_and_bad_bytes_are_refused() {
    for spec in indicators::all().filter(|s| s.new_state.is_none()) {
        if spec.inputs.iter().all(|i| default_input(i).is_some()) {
            let b = Bundle::new(&[MemberDef::new(spec.name)]).unwrap();
            assert!(BundleStates::new(b, 1).is_err());
        }
    }
    assert!(BundleStates::load(b"").is_err());
    assert!(BundleStates::load(b"MMBS").is_err());
    let e = BundleStates::load(b"MMBS\x09").err().unwrap().to_string();
    assert!(e.contains("format 9"), "{e}");
    let set = BundleStates::new(Bundle::new(&[MemberDef::new("atr")]).unwrap(), 2).unwrap();
    let bytes = set.save();
    assert!(BundleStates::load(&bytes[..bytes.len() - 1]).is_err());
    let back = BundleStates::load(&bytes).unwrap();
    assert_eq!(back.n_symbols(), 2);
    assert_eq!(back.save(), bytes);
}

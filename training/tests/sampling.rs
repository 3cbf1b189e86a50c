//! Minority sampling: SMOTE against imbalanced-learn 0.14.1 (bit-exact float32 rows) and
//! numpy's `RandomState`, values from `tests/reference/smote_reference.py`; the
//! duplication / SMOTE plan against hand-computed shares.

use risk_training::data::numpy_rng::RandomState;
use risk_training::data::sampling::{self, Sample, SamplingConfig};
use risk_training::data::smote;
use risk_training::synth::ClassCounts;

const N_MIN: usize = 9;
const D: usize = 6;

/// The minority rows of the reference data (label 1).
fn minority() -> Vec<Vec<f32>> {
    (0..N_MIN as i64)
        .map(|i| {
            (0..D as i64)
                .map(|j| ((i * 2_654_435_761 + j * 40_503 + 17 * i * j) % 1000) as f32 / 64.0)
                .collect()
        })
        .collect()
}

#[test]
fn random_state_matches_numpy() {
    let mut rs = RandomState::new(42);
    assert_eq!(rs.randint(27, 8), vec![6, 19, 14, 10, 7, 20, 6, 25]);
    assert_eq!(
        rs.uniform(3),
        vec![0.15599452033620265, 0.05808361216819946, 0.8661761457749352]
    );
    assert_eq!(
        RandomState::new(7).randint(1000, 5),
        vec![175, 196, 537, 502, 579]
    );
}

fn check_smote(k: usize, expected_nns: &[[usize; 5]], expected: &[[u32; D]]) {
    let x = minority();
    let nns = smote::nearest_neighbours(&x, k);
    for (got, want) in nns.iter().zip(expected_nns) {
        assert_eq!(got.as_slice(), &want[..k]);
    }
    let plan = smote::plan(&nns, expected.len(), 42);
    assert_eq!(plan.len(), expected.len());
    for (s, want) in plan.iter().zip(expected) {
        let row = s.apply(&x[s.sample], &x[s.neighbour]);
        let bits: Vec<u32> = row.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits.as_slice(), want.as_slice(), "synthetic row {s:?}");
    }
}

const NNS: [[usize; 5]; N_MIN] = [
    [4, 8, 3, 7, 2],
    [6, 2, 7, 5, 8],
    [1, 6, 8, 7, 5],
    [7, 4, 0, 8, 1],
    [0, 3, 8, 7, 5],
    [1, 6, 2, 4, 7],
    [1, 2, 7, 5, 8],
    [8, 1, 6, 3, 2],
    [7, 2, 0, 1, 3],
];

#[test]
fn smote_k3_matches_imbalanced_learn() {
    check_smote(
        3,
        &NNS,
        &[
            [
                0x411d2375, 0x401df991, 0x412bd953, 0x4058d10a, 0x413a8f32, 0x4089d441,
            ],
            [
                0x410c6678, 0x401fcd85, 0x413d804a, 0x40b21a65, 0x416e9a1b, 0x410a2704,
            ],
            [
                0x3f8069f6, 0x41269be5, 0x40865518, 0x40cdd28a, 0x40ec8fb3, 0x411a0692,
            ],
            [
                0x404b3e5f, 0x413ebaab, 0x40a14b7c, 0x415c90d1, 0x40dcf7c9, 0x40a7a8a3,
            ],
            [
                0x41041250, 0x3f96008e, 0x411b6dd3, 0x40286e54, 0x4132c957, 0x4082ee31,
            ],
            [
                0x40cd3805, 0x4129590a, 0x4120a458, 0x40815105, 0x415aacad, 0x40f561b0,
            ],
            [
                0x4105dedf, 0x3f8f0bf7, 0x4117e41f, 0x400f9afa, 0x4129e95e, 0x4057aff8,
            ],
        ],
    );
}

#[test]
fn smote_k5_matches_imbalanced_learn() {
    check_smote(
        5,
        &NNS,
        &[
            [
                0x409071b2, 0x4154ff40, 0x40cf8b4d, 0x41531753, 0x41075274, 0x3fd0c6d7,
            ],
            [
                0x40adc697, 0x41039ca4, 0x40fb8e89, 0x412a809e, 0x4081e535, 0x41516497,
            ],
            [
                0x4134989c, 0x4093bf85, 0x415926e9, 0x40dcdc1d, 0x4099611f, 0x4112fc5b,
            ],
            [
                0x3fac608c, 0x413498e7, 0x40b34b77, 0x3e75fe4d, 0x411dbf66, 0x408fe347,
            ],
            [
                0x40aa0791, 0x41683996, 0x41107aed, 0x4044d9fe, 0x414bf212, 0x40d95b48,
            ],
            [
                0x3debebb7, 0x4102710d, 0x3f10a42c, 0x4109a378, 0x3f81e571, 0x4110d5e4,
            ],
            [
                0x409ed41b, 0x41674df4, 0x410531da, 0x40b056ea, 0x413af9a7, 0x40b1bb1c,
            ],
            [
                0x40778b4c, 0x414c3ff4, 0x40c13a29, 0x41418569, 0x41035756, 0x3fbda3b5,
            ],
            [
                0x3f504779, 0x411ee2a5, 0x405b0348, 0x411ac51c, 0x40c0fa58, 0x41448176,
            ],
            [
                0x4114adb0, 0x3ffd1564, 0x412497a9, 0x403e3292, 0x413481a1, 0x407dda72,
            ],
            [
                0x4121daad, 0x402f7ef5, 0x412fe4ce, 0x4067a77a, 0x413deeef, 0x408fe800,
            ],
        ],
    );
}

fn counts(low: u64, medium: u64, high: u64, nodata: u64) -> ClassCounts {
    ClassCounts {
        low,
        medium,
        high,
        nodata,
    }
}

#[test]
fn plan_duplicates_to_five_percent_then_smotes_to_seven_and_a_half() {
    // 100 tiles of 1000 pixels: 94 with 1% class 1, 6 rich ones with 40% (and 100 nodata
    // pixels, which never count). Class 1: (94 * 10 + 6 * 360) / (94 * 1000 + 6 * 900)
    // = 3100 / 99400 = 3.12%.
    let mut tiles: Vec<ClassCounts> = (0..94).map(|_| counts(700, 10, 290, 0)).collect();
    tiles.extend((0..6).map(|_| counts(340, 360, 200, 100)));
    let plan = sampling::plan(&tiles, &SamplingConfig::default(), |i| {
        Ok::<_, ()>((0..8).map(|j| ((i * 31 + j * 7) % 13) as f32).collect())
    })
    .unwrap();
    assert_eq!(plan.rich, (94..100).collect::<Vec<_>>());
    // Duplicates d: (3100 + 360 d) / (99400 + 900 d) >= 0.05 -> d >= 5.06 -> 6, round robin.
    assert_eq!(plan.duplicates, 6);
    assert_eq!(
        &plan.samples[100..106],
        &(94..100).map(Sample::Tile).collect::<Vec<_>>()[..]
    );
    assert!((plan.share[1] - 5260.0 / 104_800.0).abs() < 1e-12);
    // SMOTE n: (5260 + 360 n) / (104800 + 900 n) = 0.075 -> n = 2600 / 292.5 = 8.89 -> 9.
    assert_eq!((plan.synthetic, plan.k_used), (9, 5));
    assert!((plan.share[2] - 8500.0 / 112_900.0).abs() < 1e-12);
    assert!(plan.share[2] >= 0.075);
    for s in &plan.samples[106..] {
        let Sample::Synthetic {
            a,
            b,
            step,
            label_from,
        } = *s
        else {
            panic!("expected a synthetic sample, got {s:?}");
        };
        assert!(plan.rich.contains(&a) && plan.rich.contains(&b) && a != b);
        assert_eq!(label_from, if step <= 0.5 { a } else { b });
    }
    assert!(plan.warnings.is_empty());
    // The training log states each share and the synthetic tile count (3100 / 99400,
    // 5260 / 104800, 8500 / 112900 as percentages).
    assert_eq!(
        risk_training::train::sampling_log(&plan, 0.30),
        [
            "minority sampling: class-1 share of the training tiles 3.12%; 6 class-1-rich tiles (>= 30% class 1)",
            "duplication: 6 copies of class-1-rich tiles; class-1 share 3.12% -> 5.02%",
            "Generated 9 synthetic tiles via SMOTE (k 5); class-1 share 5.02% -> 7.53%",
        ]
    );
}

#[test]
fn plan_reduces_k_with_few_rich_tiles_and_skips_without_any() {
    let mut tiles: Vec<ClassCounts> = (0..50).map(|_| counts(900, 5, 95, 0)).collect();
    tiles.extend((0..3).map(|_| counts(500, 500, 0, 0)));
    let plan = sampling::plan(&tiles, &SamplingConfig::default(), |i| {
        Ok::<_, ()>(vec![i as f32, 1.0])
    })
    .unwrap();
    assert_eq!(plan.k_used, 2);
    assert!(
        plan.warnings[0].contains("SMOTE k reduced from 5 to 2"),
        "{:?}",
        plan.warnings
    );

    let plain: Vec<ClassCounts> = (0..10).map(|_| counts(900, 5, 95, 0)).collect();
    let plan = sampling::plan(&plain, &SamplingConfig::default(), |_| -> Result<Vec<f32>, ()> {
        panic!("no tile needs loading")
    })
    .unwrap();
    assert_eq!((plan.samples.len(), plan.duplicates, plan.synthetic), (10, 0, 0));
    assert!(plan.warnings[0].contains("no class-1-rich tiles"));
}

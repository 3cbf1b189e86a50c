//! Tiled CRF: the tile plan covers every pixel once, and the CRF run in tiles with a halo
//! gives the same labels as one run over the whole raster (>= 99.9% of pixels), on a
//! synthetic 700x700 scene cut into 3x3 tiles with a 192 px halo. Also the band stretch and class shares.

use risk_inference::crf::{self, BandStretch, CrfParams, CrfTiling};

/// Deterministic scene: smooth class regions (sums of sines), class colours plus noise,
/// probabilities `softmax(2.2 onehot + noise)` as the pydensecrf harness's scenes have them.
fn scene(w: usize, h: usize) -> (Vec<u8>, Vec<f32>) {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        ((state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let colours = [[90.0f32, 120.0, 70.0], [155.0, 135.0, 90.0], [150.0, 100.0, 80.0]];
    let mut rgb = vec![0u8; w * h * 3];
    let mut prob = vec![0f32; 3 * w * h];
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32, y as f32);
            let f = (fx / 57.0).sin() + (fy / 43.0).cos() + 0.5 * ((fx + fy) / 23.0).sin();
            let class = if f > 0.9 {
                2
            } else if f > 0.6 {
                1
            } else {
                0
            };
            let i = y * w + x;
            for c in 0..3 {
                rgb[3 * i + c] = (colours[class][c] + 25.0 * noise()).clamp(1.0, 255.0).round() as u8;
            }
            let logits: [f32; 3] =
                std::array::from_fn(|c| if c == class { 2.2 } else { 0.0 } + 1.2 * noise());
            let m = logits.iter().copied().fold(f32::MIN, f32::max);
            let e = logits.map(|l| (l - m).exp());
            let s: f32 = e.iter().sum();
            for c in 0..3 {
                prob[c * w * h + i] = e[c] / s;
            }
        }
    }
    (rgb, prob)
}

#[test]
fn tile_cores_cover_the_raster_once() {
    let tiling = CrfTiling { tile: 300, halo: 40 };
    for (w, h) in [(700, 520), (300, 300), (301, 77), (1000, 1)] {
        let plan = crf::tile_plan(w, h, &tiling).unwrap();
        let mut seen = vec![0u8; w * h];
        for t in &plan {
            let (c, e) = (t.core, t.ext);
            assert!(e.width <= tiling.tile && e.height <= tiling.tile);
            assert!(
                e.x <= c.x
                    && e.y <= c.y
                    && c.x + c.width <= e.x + e.width
                    && c.y + c.height <= e.y + e.height
            );
            // Interior core edges have the full halo.
            if c.x > 0 {
                assert_eq!(c.x - e.x, tiling.halo);
            }
            for y in c.y..c.y + c.height {
                for x in c.x..c.x + c.width {
                    seen[y * w + x] += 1;
                }
            }
        }
        assert!(
            seen.iter().all(|&s| s == 1),
            "{w}x{h}: every pixel in exactly one core"
        );
    }
    assert!(crf::tile_plan(10, 10, &CrfTiling { tile: 64, halo: 32 }).is_err());
}

#[test]
fn tiled_equals_whole_on_at_least_99_9_percent() {
    let (w, h) = (700, 700);
    let (rgb, prob) = scene(w, h);
    let params = CrfParams::ENHANCED;
    let whole = crf::dense_crf(&rgb, &prob, w, h, &params).unwrap();
    let tiling = CrfTiling { tile: 640, halo: 192 };
    // Cores of at most 256 px: 3 x 3 tiles, so many seams cross the scene.
    assert_eq!(crf::tile_plan(w, h, &tiling).unwrap().len(), 9);
    let tiled = crf::dense_crf_tiled(&rgb, &prob, w, h, &params, &tiling).unwrap();
    let (a, b) = (
        crf::labels_from_q(&whole, w * h),
        crf::labels_from_q(&tiled, w * h),
    );
    let agree = a.iter().zip(&b).filter(|(x, y)| x == y).count() as f64 / (w * h) as f64;
    let max_q = whole
        .iter()
        .zip(&tiled)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    println!("tiled vs whole: label agreement {agree:.6}, max |Q diff| {max_q:.3e}");
    assert!(agree >= 0.999, "tiled vs whole agreement {agree}");
    // The CRF changed the labels (the test would be empty otherwise).
    let before = crf::labels_from_q(&prob, w * h);
    let changed = before.iter().zip(&a).filter(|(x, y)| x != y).count();
    assert!(changed > w * h / 50, "CRF changed only {changed} labels");
}

#[test]
fn band_stretch_maps_percentiles_to_0_and_255() {
    // Band values 0..=999: 2nd percentile 20 (rank 19.98 -> 20), 98th 979.
    let band: Vec<f32> = (0..1000).map(|v| v as f32).collect();
    let s = BandStretch::from_bands([&band, &band, &band], None);
    assert_eq!(s.lo, [20.0; 3]);
    assert_eq!(s.hi, [979.0; 3]);
    let rgb = s.apply([&band, &band, &band]);
    assert_eq!(&rgb[..3], &[0, 0, 0]);
    assert_eq!(rgb[3 * 20], 0);
    assert_eq!(rgb[3 * 979], 255);
    assert_eq!(rgb[3 * 500], ((500.0 - 20.0) / 959.0 * 255.0f32).round() as u8);
    // Nodata is left out of the percentiles.
    let mut with_nd = band.clone();
    with_nd.extend(std::iter::repeat_n(-9999.0, 500));
    assert_eq!(
        BandStretch::from_bands([&with_nd; 3], Some(-9999.0)).lo,
        [20.0; 3]
    );
}

#[test]
fn class_shares_count_classes_and_skip_nodata() {
    let labels = [0u8, 0, 1, 2, 2, 2, 255, 255];
    assert_eq!(crf::class_shares(&labels), [2.0 / 6.0, 1.0 / 6.0, 3.0 / 6.0]);
}

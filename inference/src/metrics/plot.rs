//! PNG figures of an evaluation: the confusion matrix and a truth / prediction / errors
//! quicklook.
//!
//! - [`QuicklookBuilder`] is fed the same strips as the confusion matrix and keeps one row
//!   of block histograms, so its memory is that of the small output images. Each output
//!   pixel of the class panels is the majority class of its block (ties go to the riskier
//!   class, nodata only by a strict majority); in the errors panel its colour says the most
//!   common error of the block (prediction under or over the truth, by 1 or 2 classes) and
//!   its strength the share of wrong pixels in the block.
//! - [`render_quicklook`] and [`render_confusion`] lay the figures out with a title,
//!   labels and a legend; text is drawn with the public-domain 8 x 8 bitmap font of the
//!   `font8x8` crate, scaled by whole pixels, so no font files are needed.
//!
//! Colours: Low green, Medium amber, High red (the class maps' palette), nodata grey.

use image::{Rgb, RgbImage};

use super::{CLASS_NAMES, ConfusionMatrix, Metrics, NUM_CLASSES};
use crate::raster::Window;

/// Low, Medium, High: the class-map palette of [`crate::classes::PALETTE`].
pub const CLASS_COLOURS: [Rgb<u8>; NUM_CLASSES] = {
    let p = crate::classes::PALETTE;
    [
        Rgb([p[0].1[0], p[0].1[1], p[0].1[2]]),
        Rgb([p[1].1[0], p[1].1[1], p[1].1[2]]),
        Rgb([p[2].1[0], p[2].1[1], p[2].1[2]]),
    ]
};
/// Nodata in either map.
pub const NODATA_COLOUR: Rgb<u8> = Rgb([150, 150, 150]);
/// Errors panel: prediction equals truth.
pub const CORRECT_COLOUR: Rgb<u8> = Rgb([250, 250, 250]);
/// Errors panel, by kind: under by 1, under by 2, over by 1, over by 2.
pub const ERROR_COLOURS: [Rgb<u8>; 4] = [
    Rgb([107, 174, 214]),
    Rgb([8, 69, 148]),
    Rgb([194, 140, 210]),
    Rgb([118, 42, 131]),
];
const ERROR_NAMES: [&str; 4] = ["under by 1", "under by 2", "over by 1", "over by 2"];
const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([25, 25, 25]);
const FRAME: Rgb<u8> = Rgb([90, 90, 90]);
const MATRIX_DARK: Rgb<u8> = Rgb([8, 48, 107]);

/// Width and height of one glyph of the font before scaling.
const GLYPH: u32 = 8;
const MARGIN: u32 = 20;

/// Slot of a label in the class histograms: classes 0..=2, anything else nodata (3).
fn class_slot(v: u8) -> usize {
    if v < NUM_CLASSES as u8 { v as usize } else { 3 }
}

/// Slot of a pair in the error histograms: 0 correct, 1 under by 1, 2 under by 2,
/// 3 over by 1, 4 over by 2, 5 nodata.
fn error_slot(truth: u8, pred: u8) -> usize {
    if truth >= NUM_CLASSES as u8 || pred >= NUM_CLASSES as u8 {
        return 5;
    }
    match pred as i32 - truth as i32 {
        0 => 0,
        -1 => 1,
        -2 => 2,
        1 => 3,
        _ => 4,
    }
}

/// The three downsampled panels, each `width x height` of the output.
pub struct Quicklook {
    pub truth: RgbImage,
    pub prediction: RgbImage,
    pub errors: RgbImage,
    /// Input pixels per output pixel along each axis.
    pub factor: usize,
    /// Size of the input raster.
    pub source_size: (usize, usize),
}

/// Accumulates block histograms of one output row at a time; see the module docs.
pub struct QuicklookBuilder {
    factor: usize,
    source_size: (usize, usize),
    col_to_out: Vec<u32>,
    row: usize,
    truth_hist: Vec<[u32; 4]>,
    pred_hist: Vec<[u32; 4]>,
    error_hist: Vec<[u32; 6]>,
    quicklook: Quicklook,
}

impl QuicklookBuilder {
    /// For a `width x height` raster, panels whose long side is at most `max_side`.
    pub fn new(width: usize, height: usize, max_side: usize) -> Self {
        let factor = width.max(height).div_ceil(max_side.max(1)).max(1);
        let (out_w, out_h) = (width.div_ceil(factor), height.div_ceil(factor));
        let blank = || RgbImage::from_pixel(out_w as u32, out_h as u32, NODATA_COLOUR);
        Self {
            factor,
            source_size: (width, height),
            col_to_out: (0..width).map(|x| (x / factor) as u32).collect(),
            row: 0,
            truth_hist: vec![[0; 4]; out_w],
            pred_hist: vec![[0; 4]; out_w],
            error_hist: vec![[0; 6]; out_w],
            quicklook: Quicklook {
                truth: blank(),
                prediction: blank(),
                errors: blank(),
                factor,
                source_size: (width, height),
            },
        }
    }

    /// Adds full-width rows `window` of truth and prediction (row-major; classes 0..=2,
    /// anything else shown as nodata). Strips must come top to bottom.
    pub fn add_strip(&mut self, window: Window, truth: &[u8], pred: &[u8]) {
        assert_eq!(
            window.width, self.source_size.0,
            "quicklook strips span the raster's width"
        );
        for r in 0..window.height {
            let out_row = (window.y + r) / self.factor;
            if out_row != self.row {
                self.flush_row();
                self.row = out_row;
            }
            let start = r * window.width;
            let rows = truth[start..start + window.width]
                .iter()
                .zip(&pred[start..start + window.width]);
            for (&ox, (&t, &p)) in self.col_to_out.iter().zip(rows) {
                let ox = ox as usize;
                self.truth_hist[ox][class_slot(t)] += 1;
                self.pred_hist[ox][class_slot(p)] += 1;
                self.error_hist[ox][error_slot(t, p)] += 1;
            }
        }
    }

    /// The finished panels.
    pub fn finish(mut self) -> Quicklook {
        self.flush_row();
        self.quicklook
    }

    fn flush_row(&mut self) {
        let y = self.row as u32;
        if y >= self.quicklook.truth.height() {
            return;
        }
        for x in 0..self.truth_hist.len() {
            let q = &mut self.quicklook;
            q.truth
                .put_pixel(x as u32, y, majority_colour(&self.truth_hist[x]));
            q.prediction
                .put_pixel(x as u32, y, majority_colour(&self.pred_hist[x]));
            q.errors.put_pixel(x as u32, y, error_colour(&self.error_hist[x]));
        }
        self.truth_hist.fill([0; 4]);
        self.pred_hist.fill([0; 4]);
        self.error_hist.fill([0; 6]);
    }
}

/// Colour of a block's majority class; ties go to the riskier class, nodata needs a strict
/// majority.
fn majority_colour(hist: &[u32; 4]) -> Rgb<u8> {
    let mut best = 3;
    for k in 0..NUM_CLASSES {
        if hist[k] > 0 && hist[k] >= hist[best] {
            best = k;
        }
    }
    if best == 3 {
        NODATA_COLOUR
    } else {
        CLASS_COLOURS[best]
    }
}

/// Colour of a block in the errors panel (see the module docs).
fn error_colour(hist: &[u32; 6]) -> Rgb<u8> {
    let valid: u32 = hist[..5].iter().sum();
    let wrong: u32 = hist[1..5].iter().sum();
    if valid == 0 {
        return NODATA_COLOUR;
    }
    if wrong == 0 {
        return CORRECT_COLOUR;
    }
    let kind = (1..5).max_by_key(|&k| (hist[k], k)).expect("four kinds") - 1;
    // Square root: a block with a few wrong pixels still shows.
    mix(
        CORRECT_COLOUR,
        ERROR_COLOURS[kind],
        (wrong as f64 / valid as f64).sqrt(),
    )
}

/// `a` moved towards `b` by `t` in 0..=1.
fn mix(a: Rgb<u8>, b: Rgb<u8>, t: f64) -> Rgb<u8> {
    Rgb(std::array::from_fn(|i| {
        (a[i] as f64 + (b[i] as f64 - a[i] as f64) * t).round() as u8
    }))
}

/// Width in pixels of `text` drawn at `scale`.
pub fn text_width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * GLYPH * scale
}

/// Draws `text` with its top-left corner at (`x`, `y`); what falls outside is clipped.
/// Characters outside ASCII are drawn as `?`.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: u32, colour: Rgb<u8>) {
    for (i, ch) in text.chars().enumerate() {
        let code = if ch.is_ascii() { ch as usize } else { '?' as usize };
        let glyph = font8x8::legacy::BASIC_LEGACY[code];
        let gx = x + (i as u32 * GLYPH * scale) as i64;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..GLYPH {
                if bits >> col & 1 == 1 {
                    let px = gx + (col * scale) as i64;
                    let py = y + (row as u32 * scale) as i64;
                    fill_rect(img, px, py, scale, scale, colour);
                }
            }
        }
    }
}

/// Fills a rectangle, clipped to the image.
pub fn fill_rect(img: &mut RgbImage, x: i64, y: i64, w: u32, h: u32, colour: Rgb<u8>) {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    for py in y.max(0)..(y + h as i64).min(ih) {
        for px in x.max(0)..(x + w as i64).min(iw) {
            img.put_pixel(px as u32, py as u32, colour);
        }
    }
}

/// A one-pixel frame around a rectangle.
fn frame(img: &mut RgbImage, x: i64, y: i64, w: u32, h: u32, colour: Rgb<u8>) {
    fill_rect(img, x - 1, y - 1, w + 2, 1, colour);
    fill_rect(img, x - 1, y + h as i64, w + 2, 1, colour);
    fill_rect(img, x - 1, y - 1, 1, h + 2, colour);
    fill_rect(img, x + w as i64, y - 1, 1, h + 2, colour);
}

/// `text` cut to `max_width` pixels at `scale`, ending in `...` when cut.
fn fit(text: &str, scale: u32, max_width: u32) -> String {
    let max_chars = (max_width / (GLYPH * scale)) as usize;
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let keep = max_chars.saturating_sub(3);
    text.chars().take(keep).collect::<String>() + "..."
}

/// Nearest-neighbour enlargement by a whole factor.
fn enlarge(img: &RgbImage, k: u32) -> RgbImage {
    if k == 1 {
        return img.clone();
    }
    RgbImage::from_fn(img.width() * k, img.height() * k, |x, y| {
        *img.get_pixel(x / k, y / k)
    })
}

/// A blank figure with the title (scale 2) and the subtitle (scale 1) at the top left, each
/// cut to the width between the margins.
fn titled_canvas(width: u32, height: u32, title: &str, subtitle: &str) -> RgbImage {
    let mut img = RgbImage::from_pixel(width, height, BACKGROUND);
    let room = width - 2 * MARGIN;
    let at = MARGIN as i64;
    draw_text(&mut img, at, at, &fit(title, 2, room), 2, INK);
    draw_text(&mut img, at, at + 24, &fit(subtitle, 1, room), 1, INK);
    img
}

/// A legend entry: swatch then label; returns the x after it.
fn legend_entry(img: &mut RgbImage, x: i64, y: i64, colour: Rgb<u8>, label: &str) -> i64 {
    fill_rect(img, x, y, 16, 16, colour);
    frame(img, x, y, 16, 16, FRAME);
    draw_text(img, x + 24, y, label, 2, INK);
    x + 24 + text_width(label, 2) as i64 + 28
}

const QUICKLOOK_HEADERS: [&str; 3] = ["Truth", "Prediction", "Errors"];

/// The three panels side by side under `title` and `subtitle`, with headers and a legend.
/// Small rasters are enlarged (nearest neighbour) so that panels are at least 256 px.
pub fn render_quicklook(q: &Quicklook, title: &str, subtitle: &str) -> RgbImage {
    let long = q.truth.width().max(q.truth.height()).max(1);
    let up = (256 / long).max(1);
    let panels = [
        enlarge(&q.truth, up),
        enlarge(&q.prediction, up),
        enlarge(&q.errors, up),
    ];
    let (pw, ph) = (panels[0].width(), panels[0].height());
    let gap = 24;
    let legend_1 = ["Low", "Medium", "High", "nodata"];
    let legend_2 = [
        "correct",
        ERROR_NAMES[0],
        ERROR_NAMES[1],
        ERROR_NAMES[2],
        ERROR_NAMES[3],
    ];
    let legend_width = |labels: &[&str]| labels.iter().map(|l| 24 + text_width(l, 2) + 28).sum::<u32>();
    let footnote = if q.factor > 1 {
        format!(
            "{} x {} px; 1 px here = {f} x {f} px block: majority class; errors: most common kind, \
             paler = fewer wrong",
            q.source_size.0,
            q.source_size.1,
            f = q.factor
        )
    } else {
        format!("{} x {} px at full resolution", q.source_size.0, q.source_size.1)
    };
    let width = (2 * MARGIN + 3 * pw + 2 * gap)
        .max(2 * MARGIN + legend_width(&legend_2) + 110)
        .max(2 * MARGIN + text_width(title, 2).min(1400));
    let top = MARGIN + 16 + 8 + 8 + 16 + 16 + 8;
    let height = top + ph + 16 + 16 + 12 + 16 + 12 + 8 + MARGIN;
    let mut img = titled_canvas(width, height, title, subtitle);
    let text_room = width - 2 * MARGIN;
    let header_y = (MARGIN + 40) as i64;
    for (i, (panel, header)) in panels.iter().zip(QUICKLOOK_HEADERS).enumerate() {
        let x = (MARGIN + i as u32 * (pw + gap)) as i64;
        draw_text(&mut img, x, header_y, &fit(header, 2, pw.max(64)), 2, INK);
        image::imageops::replace(&mut img, panel, x, top as i64);
        frame(&mut img, x, top as i64, pw, ph, FRAME);
    }
    let mut y = (top + ph + 16) as i64;
    let mut x = MARGIN as i64;
    draw_text(&mut img, x, y, "Class:", 2, INK);
    x += 110;
    for (k, label) in legend_1.iter().enumerate() {
        let colour = if k < NUM_CLASSES {
            CLASS_COLOURS[k]
        } else {
            NODATA_COLOUR
        };
        x = legend_entry(&mut img, x, y, colour, label);
    }
    y += 28;
    x = MARGIN as i64;
    draw_text(&mut img, x, y, "Error:", 2, INK);
    x += 110;
    x = legend_entry(&mut img, x, y, CORRECT_COLOUR, legend_2[0]);
    for (k, label) in legend_2[1..].iter().enumerate() {
        x = legend_entry(&mut img, x, y, ERROR_COLOURS[k], label);
    }
    y += 28;
    draw_text(&mut img, MARGIN as i64, y, &fit(&footnote, 1, text_room), 1, INK);
    img
}

/// `n` with thousands separators: `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `n` in at most 5 characters (fits a matrix cell at scale 3): `9999`, then three
/// significant digits with a suffix: `12.3k`, `415k`, `4.56M`, `164M`, `7.89G`.
fn compact(n: u64) -> String {
    if n < 10_000 {
        return n.to_string();
    }
    let (mut value, mut suffix) = (n as f64, "");
    for s in ["k", "M", "G", "T", "P", "E"] {
        if value < 999.5 {
            break;
        }
        value /= 1000.0;
        suffix = s;
    }
    match value {
        v if v >= 99.95 => format!("{v:.0}{suffix}"),
        v if v >= 9.995 => format!("{v:.1}{suffix}"),
        v => format!("{v:.2}{suffix}"),
    }
}

/// The x at which text `width` wide is centred in `room` pixels from `left`; may lie left
/// of `left` when the text is wider (drawing clips).
fn centred(left: u32, room: u32, width: u32) -> i64 {
    left as i64 + (room as i64 - width as i64) / 2
}

fn percent(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn optional(x: Option<f64>) -> String {
    x.map_or("undefined".to_string(), |v| format!("{v:.4}"))
}

/// The confusion matrix as a heat map: rows truth, columns prediction, each cell with its
/// pixel count and share of the truth row; recall to the right, precision below, and the
/// overall scores at the bottom.
pub fn render_confusion(matrix: &ConfusionMatrix, title: &str, subtitle: &str) -> RgbImage {
    let m: Metrics = matrix.metrics();
    let cell = 150u32;
    let label_w = 180u32;
    let axis_w = 44u32;
    let side_w = 120u32;
    let grid_x = MARGIN + axis_w + label_w;
    let grid_y = MARGIN + 40 + 32 + 28;
    let grid_w = cell * NUM_CLASSES as u32;
    let footer = [
        format!(
            "kappa {}   quadratic kappa {}",
            optional(m.cohen_kappa),
            optional(m.quadratic_kappa)
        ),
        format!(
            "Spearman rho {}   accuracy {}",
            optional(m.spearman_rho),
            m.accuracy.map_or("undefined".into(), percent)
        ),
    ];
    let width = (grid_x + grid_w + side_w + MARGIN)
        .max(2 * MARGIN + footer.iter().map(|f| text_width(f, 2)).max().unwrap_or(0))
        .max(2 * MARGIN + text_width(title, 2).min(1200));
    let below_y = grid_y + grid_w + 12;
    let height = below_y + 76 + 16 + MARGIN;
    let mut img = titled_canvas(width, height, title, subtitle);
    let text_room = width - 2 * MARGIN;

    // Axis titles: "Prediction" over the columns, "Truth" down the left side.
    let pred_title = "Prediction";
    let cx = centred(grid_x, grid_w, text_width(pred_title, 2));
    draw_text(&mut img, cx, (grid_y - 56) as i64, pred_title, 2, INK);
    let truth_title = "Truth";
    let ty = centred(grid_y, grid_w, truth_title.len() as u32 * 18);
    for (i, ch) in truth_title.chars().enumerate() {
        draw_text(
            &mut img,
            MARGIN as i64,
            ty + i as i64 * 18,
            &ch.to_string(),
            2,
            INK,
        );
    }
    let names: Vec<String> = (0..NUM_CLASSES)
        .map(|k| format!("{k} {}", CLASS_NAMES[k]))
        .collect();
    let rows = matrix.truth_totals();
    for (k, name) in names.iter().enumerate() {
        // Column header, centred, with a class swatch; row label likewise.
        let col_x = grid_x + k as u32 * cell;
        let hx = centred(col_x, cell, text_width(name, 2));
        draw_text(&mut img, hx, (grid_y - 26) as i64, name, 2, INK);
        fill_rect(
            &mut img,
            col_x as i64 + 4,
            (grid_y - 6) as i64,
            cell - 8,
            4,
            CLASS_COLOURS[k],
        );
        let row_y = grid_y + k as u32 * cell;
        draw_text(
            &mut img,
            (MARGIN + axis_w) as i64,
            (row_y + cell / 2 - 8) as i64,
            name,
            2,
            INK,
        );
        fill_rect(
            &mut img,
            (grid_x - 8) as i64,
            row_y as i64 + 4,
            4,
            cell - 8,
            CLASS_COLOURS[k],
        );
    }
    for (t, (counts, &row)) in matrix.counts().iter().zip(&rows).enumerate() {
        for (p, &count) in counts.iter().enumerate() {
            let share = if row == 0 { 0.0 } else { count as f64 / row as f64 };
            let (x, y) = (grid_x + p as u32 * cell, grid_y + t as u32 * cell);
            fill_rect(
                &mut img,
                x as i64,
                y as i64,
                cell,
                cell,
                mix(BACKGROUND, MATRIX_DARK, share),
            );
            let ink = if share > 0.5 { BACKGROUND } else { INK };
            let count_text = compact(count);
            let share_text = if row == 0 { "-".to_string() } else { percent(share) };
            let cx = |s: &str| centred(x, cell, text_width(s, 3));
            draw_text(
                &mut img,
                cx(&count_text),
                (y + cell / 2 - 30) as i64,
                &count_text,
                3,
                ink,
            );
            let sx = centred(x, cell, text_width(&share_text, 2));
            draw_text(&mut img, sx, (y + cell / 2 + 8) as i64, &share_text, 2, ink);
        }
    }
    for k in 0..=NUM_CLASSES as u32 {
        fill_rect(
            &mut img,
            grid_x as i64,
            (grid_y + k * cell) as i64,
            grid_w,
            1,
            FRAME,
        );
        fill_rect(
            &mut img,
            (grid_x + k * cell) as i64,
            grid_y as i64,
            1,
            grid_w,
            FRAME,
        );
    }
    // Recall per row at the right, precision per column below.
    let side_x = (grid_x + grid_w + 16) as i64;
    draw_text(&mut img, side_x, (grid_y - 26) as i64, "recall", 2, INK);
    draw_text(
        &mut img,
        (MARGIN + axis_w) as i64,
        below_y as i64,
        "precision",
        2,
        INK,
    );
    for k in 0..NUM_CLASSES {
        let c = m.classes[k];
        let row_y = grid_y + k as u32 * cell + cell / 2 - 8;
        draw_text(&mut img, side_x, row_y as i64, &percent(c.recall), 2, INK);
        let text = percent(c.precision);
        let px = centred(grid_x + k as u32 * cell, cell, text_width(&text, 2));
        draw_text(&mut img, px, below_y as i64, &text, 2, INK);
    }
    let note = "Cells: pixels, and % of the truth row. Nodata in either map is left out.";
    draw_text(
        &mut img,
        MARGIN as i64,
        (below_y + 32) as i64,
        &fit(note, 1, text_room),
        1,
        INK,
    );
    for (i, line) in footer.iter().enumerate() {
        draw_text(
            &mut img,
            MARGIN as i64,
            (below_y + 52 + 24 * i as u32) as i64,
            line,
            2,
            INK,
        );
    }
    img
}

/// A PNG of `img`, in memory.
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::NODATA;

    #[test]
    fn quicklook_blocks_take_the_majority_and_the_error_kind() {
        // 4 x 2 raster, factor 2: two blocks of 2 x 2.
        let mut b = QuicklookBuilder::new(4, 2, 2);
        let truth = [0, 0, 2, 2, /* row 2 */ 0, 1, 2, NODATA];
        let pred = [0, 0, 1, 2, /* row 2 */ 0, 0, 0, NODATA];
        b.add_strip(Window::new(0, 0, 4, 1), &truth[..4], &pred[..4]);
        b.add_strip(Window::new(0, 1, 4, 1), &truth[4..], &pred[4..]);
        let q = b.finish();
        assert_eq!((q.truth.width(), q.truth.height(), q.factor), (2, 1, 2));
        assert_eq!(*q.truth.get_pixel(0, 0), CLASS_COLOURS[0]);
        assert_eq!(*q.truth.get_pixel(1, 0), CLASS_COLOURS[2]);
        // Prediction block 2 holds 1, 2, 0 and nodata: a three-way tie goes to High.
        assert_eq!(*q.prediction.get_pixel(1, 0), CLASS_COLOURS[2]);
        // Block 1: one of four wrong (under by 1): the light blue at strength sqrt(1/4).
        assert_eq!(
            *q.errors.get_pixel(0, 0),
            mix(CORRECT_COLOUR, ERROR_COLOURS[0], 0.5)
        );
        // Block 2: under by 1, correct, under by 2 -> 2 of 3 wrong, tie goes to "under by 2".
        assert_eq!(
            *q.errors.get_pixel(1, 0),
            mix(CORRECT_COLOUR, ERROR_COLOURS[1], (2.0f64 / 3.0).sqrt())
        );
    }

    #[test]
    fn text_is_drawn_from_the_bitmap_font() {
        let mut img = RgbImage::from_pixel(16, 8, BACKGROUND);
        draw_text(&mut img, 0, 0, "I", 1, INK);
        let inked = img.pixels().filter(|p| **p == INK).count();
        let expected: u32 = font8x8::legacy::BASIC_LEGACY['I' as usize]
            .iter()
            .map(|b| b.count_ones())
            .sum();
        assert_eq!(inked as u32, expected);
        assert!(expected > 0);
        assert_eq!(text_width("abc", 2), 48);
    }

    #[test]
    fn compact_counts_fit_a_cell() {
        assert_eq!(compact(9_999), "9999");
        assert_eq!(compact(12_345), "12.3k");
        assert_eq!(compact(415_300), "415k");
        assert_eq!(compact(999_999), "1.00M");
        assert_eq!(compact(8_610_000), "8.61M");
        assert_eq!(compact(164_123_456), "164M");
        assert_eq!(compact(10_000_000_000), "10.0G");
        assert_eq!(compact(u64::MAX), "18.4E");
        for n in [10_000, 99_949, 99_950, 999_499, 999_500, 12_345_678_901, u64::MAX] {
            assert!(compact(n).len() <= 5, "{n}: {}", compact(n));
        }
        assert_eq!(thousands(268_435_456), "268,435,456");
        assert_eq!(thousands(999), "999");
    }
}

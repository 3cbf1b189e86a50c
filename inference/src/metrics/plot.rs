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
//!   labels and a legend, in layout units drawn [`RESOLUTION`] output pixels each (sharp on
//!   high-density screens and in print). Text is anti-aliased TrueType: Liberation Sans
//!   (SIL Open Font License 1.1, vendored under `inference/assets/fonts/` with its
//!   licence) rasterised by `ab_glyph`.
//! - A metric that is undefined (precision of a class never predicted, recall of a class
//!   absent from the truth, kappa or rho of a single-class map) is written "-", as in
//!   `report.md`, never as 0.
//!
//! Colours: Low green, Medium amber, High red (the class maps' palette), nodata grey. In
//! the errors panel the hue alone says the kind of error (four hues of about the same
//! lightness), so that lightness has one meaning: paler is fewer wrong pixels in the block.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use image::{Rgb, RgbImage};

use super::{CLASS_NAMES, ConfusionMatrix, Metrics, NUM_CLASSES, StripObserver};
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
/// Errors panel, by kind: under by 1 (blue), under by 2 (teal), over by 1 (purple), over
/// by 2 (magenta). Four hues of about the same lightness (CIE L* 44 to 48): the kind is the
/// hue, and lightness only the share of wrong pixels (see the module docs).
pub const ERROR_COLOURS: [Rgb<u8>; 4] = [
    Rgb([40, 110, 200]),
    Rgb([0, 120, 110]),
    Rgb([140, 80, 180]),
    Rgb([190, 40, 120]),
];
const ERROR_NAMES: [&str; 4] = ["under by 1", "under by 2", "over by 1", "over by 2"];
const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
/// Text: near black, a little blue, so that no anti-aliased edge on white is exactly the
/// grey of nodata (counted by the tests as map pixels).
const INK: Rgb<u8> = Rgb([20, 25, 35]);
const FRAME: Rgb<u8> = Rgb([90, 90, 90]);
const MATRIX_DARK: Rgb<u8> = Rgb([8, 48, 107]);

const MARGIN: u32 = 20;

/// Output pixels per layout unit.
pub const RESOLUTION: u32 = 2;
/// Font height (ascent to descent) in layout units per step of text size: size 1 notes,
/// 2 labels, 3 the matrix counts.
const FONT_UNITS: f32 = 10.0;

/// The vendored Liberation Sans Regular (see the module docs).
fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| {
        FontRef::try_from_slice(include_bytes!("../../assets/fonts/LiberationSans-Regular.ttf"))
            .expect("the vendored font parses")
    })
}

fn px_scale(size: u32) -> PxScale {
    PxScale::from(FONT_UNITS * size as f32 * RESOLUTION as f32)
}

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

/// Fed the strips of `evaluate_rasters_with` (see [`QuicklookBuilder::add_strip`]).
impl StripObserver for QuicklookBuilder {
    fn add_strip(&mut self, window: Window, truth: &[u8], pred: &[u8]) {
        QuicklookBuilder::add_strip(self, window, truth, pred);
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

/// Advance of `text` at `size` in output pixels (kerning included).
fn advance_px(text: &str, size: u32) -> f32 {
    let f = font().as_scaled(px_scale(size));
    let mut width = 0.0;
    let mut prev = None;
    for ch in text.chars() {
        let id = f.glyph_id(ch);
        if let Some(p) = prev {
            width += f.kern(p, id);
        }
        width += f.h_advance(id);
        prev = Some(id);
    }
    width
}

/// Width in layout units of `text` drawn at `size`.
pub fn text_width(text: &str, size: u32) -> u32 {
    (advance_px(text, size) / RESOLUTION as f32).ceil() as u32
}

/// A figure being drawn: coordinates and sizes in layout units, pixels [`RESOLUTION`]
/// times as many.
pub struct Canvas {
    img: RgbImage,
}

impl Canvas {
    /// A `width x height` (units) canvas of one colour.
    pub fn new(width: u32, height: u32, colour: Rgb<u8>) -> Self {
        Self {
            img: RgbImage::from_pixel(width * RESOLUTION, height * RESOLUTION, colour),
        }
    }

    pub fn into_image(self) -> RgbImage {
        self.img
    }

    /// Fills a rectangle, clipped to the canvas.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: u32, h: u32, colour: Rgb<u8>) {
        let k = RESOLUTION as i64;
        fill_px(
            &mut self.img,
            x * k,
            y * k,
            w * RESOLUTION,
            h * RESOLUTION,
            colour,
        );
    }

    /// A one-unit frame around a rectangle.
    fn frame(&mut self, x: i64, y: i64, w: u32, h: u32, colour: Rgb<u8>) {
        self.fill_rect(x - 1, y - 1, w + 2, 1, colour);
        self.fill_rect(x - 1, y + h as i64, w + 2, 1, colour);
        self.fill_rect(x - 1, y - 1, 1, h + 2, colour);
        self.fill_rect(x + w as i64, y - 1, 1, h + 2, colour);
    }

    /// Draws `text` at `size` with the top of its line at `y` and its start at `x`,
    /// anti-aliased over what is there; what falls outside is clipped.
    pub fn text(&mut self, x: i64, y: i64, text: &str, size: u32, colour: Rgb<u8>) {
        let f = font().as_scaled(px_scale(size));
        let k = RESOLUTION as f32;
        let mut caret = point(x as f32 * k, y as f32 * k + f.ascent());
        let mut prev = None;
        let (w, h) = (self.img.width() as i64, self.img.height() as i64);
        for ch in text.chars() {
            let id = f.glyph_id(ch);
            if let Some(p) = prev {
                caret.x += f.kern(p, id);
            }
            let glyph = id.with_scale_and_position(f.scale(), caret);
            caret.x += f.h_advance(id);
            prev = Some(id);
            let Some(outline) = font().outline_glyph(glyph) else {
                continue; // a space
            };
            let bounds = outline.px_bounds();
            let img = &mut self.img;
            outline.draw(|gx, gy, coverage| {
                let px = bounds.min.x as i64 + gx as i64;
                let py = bounds.min.y as i64 + gy as i64;
                if (0..w).contains(&px) && (0..h).contains(&py) {
                    let p = img.get_pixel_mut(px as u32, py as u32);
                    *p = mix(*p, colour, coverage.clamp(0.0, 1.0) as f64);
                }
            });
        }
    }

    /// Copies `panel` (already in output pixels) with its top-left corner at (`x`, `y`).
    fn place(&mut self, panel: &RgbImage, x: i64, y: i64) {
        let k = RESOLUTION as i64;
        image::imageops::replace(&mut self.img, panel, x * k, y * k);
    }
}

/// Fills a rectangle of output pixels, clipped to the image.
fn fill_px(img: &mut RgbImage, x: i64, y: i64, w: u32, h: u32, colour: Rgb<u8>) {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    for py in y.max(0)..(y + h as i64).min(ih) {
        for px in x.max(0)..(x + w as i64).min(iw) {
            img.put_pixel(px as u32, py as u32, colour);
        }
    }
}

/// `text` cut to `max_width` units at `size`, ending in `...` when cut.
fn fit(text: &str, size: u32, max_width: u32) -> String {
    if text_width(text, size) <= max_width {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len())
        .rev()
        .map(|n| chars[..n].iter().collect::<String>() + "...")
        .find(|cut| text_width(cut, size) <= max_width)
        .unwrap_or_default()
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

/// A blank figure (`width x height` units) with the title (size 2) and the subtitle
/// (size 1) at the top left, each cut to the width between the margins.
fn titled_canvas(width: u32, height: u32, title: &str, subtitle: &str) -> Canvas {
    let mut c = Canvas::new(width, height, BACKGROUND);
    let room = width - 2 * MARGIN;
    let at = MARGIN as i64;
    c.text(at, at - 2, &fit(title, 2, room), 2, INK);
    c.text(at, at + 22, &fit(subtitle, 1, room), 1, INK);
    c
}

/// A legend entry: swatch then label; returns the x after it.
fn legend_entry(c: &mut Canvas, x: i64, y: i64, colour: Rgb<u8>, label: &str) -> i64 {
    c.fill_rect(x, y, 16, 16, colour);
    c.frame(x, y, 16, 16, FRAME);
    c.text(x + 24, y - 2, label, 2, INK);
    x + 24 + text_width(label, 2) as i64 + 28
}

const QUICKLOOK_HEADERS: [&str; 3] = ["Truth", "Prediction", "Errors"];

/// The three panels side by side under `title` and `subtitle`, with headers and a legend.
/// Panels keep one output pixel per quicklook pixel, enlarged (nearest neighbour) to at
/// least 256 units when the raster is small.
pub fn render_quicklook(q: &Quicklook, title: &str, subtitle: &str) -> RgbImage {
    let long = q.truth.width().max(q.truth.height()).max(1);
    let up = (256 * RESOLUTION / long).max(1);
    let panels = [
        enlarge(&q.truth, up),
        enlarge(&q.prediction, up),
        enlarge(&q.errors, up),
    ];
    // Panel size in units (a last odd output pixel gets a unit of its own).
    let (pw, ph) = (
        panels[0].width().div_ceil(RESOLUTION),
        panels[0].height().div_ceil(RESOLUTION),
    );
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
            "{} x {} px; 1 px here = {f} x {f} px block: majority class; errors: colour = most common \
             kind, paler = fewer wrong pixels in the block",
            q.source_size.0,
            q.source_size.1,
            f = q.factor
        )
    } else {
        format!(
            "{} x {} px at full resolution; errors: colour = kind of error",
            q.source_size.0, q.source_size.1
        )
    };
    let width = (2 * MARGIN + 3 * pw + 2 * gap)
        .max(2 * MARGIN + legend_width(&legend_2) + 110)
        .max(2 * MARGIN + text_width(title, 2).min(1400));
    let top = MARGIN + 16 + 8 + 8 + 16 + 16 + 8;
    let height = top + ph + 16 + 16 + 12 + 16 + 12 + 8 + MARGIN;
    let mut c = titled_canvas(width, height, title, subtitle);
    let text_room = width - 2 * MARGIN;
    let header_y = (MARGIN + 38) as i64;
    for (i, (panel, header)) in panels.iter().zip(QUICKLOOK_HEADERS).enumerate() {
        let x = (MARGIN + i as u32 * (pw + gap)) as i64;
        c.text(x, header_y, &fit(header, 2, pw.max(64)), 2, INK);
        c.place(panel, x, top as i64);
        c.frame(x, top as i64, pw, ph, FRAME);
    }
    let mut y = (top + ph + 16) as i64;
    let mut x = MARGIN as i64;
    c.text(x, y - 2, "Class:", 2, INK);
    x += 110;
    for (k, label) in legend_1.iter().enumerate() {
        let colour = if k < NUM_CLASSES {
            CLASS_COLOURS[k]
        } else {
            NODATA_COLOUR
        };
        x = legend_entry(&mut c, x, y, colour, label);
    }
    y += 28;
    x = MARGIN as i64;
    c.text(x, y - 2, "Error:", 2, INK);
    x += 110;
    x = legend_entry(&mut c, x, y, CORRECT_COLOUR, legend_2[0]);
    for (k, label) in legend_2[1..].iter().enumerate() {
        x = legend_entry(&mut c, x, y, ERROR_COLOURS[k], label);
    }
    y += 28;
    c.text(MARGIN as i64, y, &fit(&footnote, 1, text_room), 1, INK);
    c.into_image()
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

/// A metric, or "-" where it is undefined (as in report.md).
fn optional(x: Option<f64>) -> String {
    x.map_or("-".to_string(), |v| format!("{v:.4}"))
}

/// Per class: the recall ("-" when the class is absent from the truth) and the precision
/// ("-" when it is never predicted) as the confusion figure writes them.
fn class_rates(matrix: &ConfusionMatrix) -> [(String, String); NUM_CLASSES] {
    let m = matrix.metrics();
    let (truth, pred) = (matrix.truth_totals(), matrix.pred_totals());
    std::array::from_fn(|k| {
        let rate = |total: u64, v: f64| if total == 0 { "-".to_string() } else { percent(v) };
        (
            rate(truth[k], m.classes[k].recall),
            rate(pred[k], m.classes[k].precision),
        )
    })
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
            m.accuracy.map_or("-".into(), percent)
        ),
    ];
    let width = (grid_x + grid_w + side_w + MARGIN)
        .max(2 * MARGIN + footer.iter().map(|f| text_width(f, 2)).max().unwrap_or(0))
        .max(2 * MARGIN + text_width(title, 2).min(1200));
    let below_y = grid_y + grid_w + 12;
    let height = below_y + 90 + 16 + MARGIN;
    let mut c = titled_canvas(width, height, title, subtitle);
    let text_room = width - 2 * MARGIN;

    // Axis titles: "Prediction" over the columns, "Truth" down the left side.
    let pred_title = "Prediction";
    let cx = centred(grid_x, grid_w, text_width(pred_title, 2));
    c.text(cx, (grid_y - 56) as i64, pred_title, 2, INK);
    let truth_title = "Truth";
    let ty = centred(grid_y, grid_w, truth_title.len() as u32 * 18);
    for (i, ch) in truth_title.chars().enumerate() {
        c.text(MARGIN as i64, ty + i as i64 * 18, &ch.to_string(), 2, INK);
    }
    let names: Vec<String> = (0..NUM_CLASSES)
        .map(|k| format!("{k} {}", CLASS_NAMES[k]))
        .collect();
    let rows = matrix.truth_totals();
    for (k, name) in names.iter().enumerate() {
        // Column header, centred, with a class swatch; row label likewise.
        let col_x = grid_x + k as u32 * cell;
        let hx = centred(col_x, cell, text_width(name, 2));
        c.text(hx, (grid_y - 26) as i64, name, 2, INK);
        c.fill_rect(
            col_x as i64 + 4,
            (grid_y - 6) as i64,
            cell - 8,
            4,
            CLASS_COLOURS[k],
        );
        let row_y = grid_y + k as u32 * cell;
        c.text(
            (MARGIN + axis_w) as i64,
            (row_y + cell / 2 - 8) as i64,
            name,
            2,
            INK,
        );
        c.fill_rect(
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
            c.fill_rect(
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
            c.text(cx(&count_text), (y + cell / 2 - 30) as i64, &count_text, 3, ink);
            let sx = centred(x, cell, text_width(&share_text, 2));
            c.text(sx, (y + cell / 2 + 8) as i64, &share_text, 2, ink);
        }
    }
    for k in 0..=NUM_CLASSES as u32 {
        c.fill_rect(grid_x as i64, (grid_y + k * cell) as i64, grid_w, 1, FRAME);
        c.fill_rect((grid_x + k * cell) as i64, grid_y as i64, 1, grid_w, FRAME);
    }
    // Recall per row at the right, precision per column below.
    let side_x = (grid_x + grid_w + 16) as i64;
    c.text(side_x, (grid_y - 26) as i64, "recall", 2, INK);
    c.text((MARGIN + axis_w) as i64, below_y as i64, "precision", 2, INK);
    for (k, (recall, precision)) in class_rates(matrix).iter().enumerate() {
        let row_y = grid_y + k as u32 * cell + cell / 2 - 8;
        c.text(side_x, row_y as i64, recall, 2, INK);
        let px = centred(grid_x + k as u32 * cell, cell, text_width(precision, 2));
        c.text(px, below_y as i64, precision, 2, INK);
    }
    let notes = [
        "Cells: pixels, and % of the truth row. Nodata in either map is left out.",
        "\"-\": undefined (no precision for a class never predicted, no recall for one absent from the truth).",
    ];
    for (i, note) in notes.iter().enumerate() {
        c.text(
            MARGIN as i64,
            (below_y + 30 + 14 * i as u32) as i64,
            &fit(note, 1, text_room),
            1,
            INK,
        );
    }
    for (i, line) in footer.iter().enumerate() {
        c.text(MARGIN as i64, (below_y + 66 + 24 * i as u32) as i64, line, 2, INK);
    }
    c.into_image()
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
    fn text_is_anti_aliased_truetype_at_twice_the_layout() {
        let mut c = Canvas::new(40, 20, BACKGROUND);
        c.text(0, 0, "H", 2, INK);
        let img = c.into_image();
        assert_eq!(img.dimensions(), (80, 40));
        // Full ink inside the strokes, partial coverage on their edges: anti-aliased.
        let full = img.pixels().filter(|p| **p == INK).count();
        let partial = img.pixels().filter(|p| **p != INK && **p != BACKGROUND).count();
        assert!(full > 100 && partial > 10, "full {full}, partial {partial}");
        // "H" is symmetric: its ink is centred on half its advance (to within a tenth of it:
        // hinting-free outlines land on whole pixels).
        let advance = advance_px("H", 2);
        let (sum, n) = img
            .enumerate_pixels()
            .filter(|(_, _, p)| **p == INK)
            .fold((0.0, 0.0), |(s, n), (x, _, _)| (s + x as f64 + 0.5, n + 1.0));
        assert!(
            (sum / n - advance as f64 / 2.0).abs() < 0.1 * advance as f64,
            "{} vs {advance}",
            sum / n
        );
        // Widths in layout units follow the font's advances: "ab" is wider than "a", and
        // a text cut to fit ends in "..." within the room.
        assert!(text_width("ab", 2) > text_width("a", 2));
        assert_eq!(text_width("abc", 2), (advance_px("abc", 2) / 2.0).ceil() as u32);
        let cut = fit("a long title that does not fit", 2, 100);
        assert!(cut.ends_with("...") && text_width(&cut, 2) <= 100, "{cut}");
    }

    /// Lightness (CIE L*) of an sRGB colour.
    fn lightness(c: Rgb<u8>) -> f64 {
        let lin = |v: u8| {
            let v = v as f64 / 255.0;
            if v <= 0.04045 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        let y = 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
        if y > 216.0 / 24389.0 {
            116.0 * y.cbrt() - 16.0
        } else {
            y * 24389.0 / 27.0
        }
    }

    #[test]
    fn error_kinds_differ_by_hue_not_lightness() {
        // Lightness says "fewer wrong pixels" only: the four kinds are within 5 L* units of
        // each other (the old palette spanned 30 to 68: light for "by 1", dark for "by 2").
        let l: Vec<f64> = ERROR_COLOURS.iter().map(|&c| lightness(c)).collect();
        let (lo, hi) = l
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(hi - lo < 5.0, "{l:?}");
        // And they are far apart in colour (sum of channel differences).
        for (i, a) in ERROR_COLOURS.iter().enumerate() {
            for b in &ERROR_COLOURS[i + 1..] {
                let d: i32 = (0..3).map(|c| (a[c] as i32 - b[c] as i32).abs()).sum();
                assert!(d >= 80, "{a:?} {b:?}: {d}");
            }
        }
    }

    #[test]
    fn undefined_rates_are_a_dash_not_zero() {
        // Truth has Medium, the prediction never does: Medium's precision is undefined;
        // High is in neither map: its recall and precision are both undefined.
        let truth = [0, 0, 1, 1, 0, 1];
        let pred = [0, 0, 0, 0, 0, 0];
        let matrix = ConfusionMatrix::from_labels(&truth, &pred).unwrap();
        let rates = class_rates(&matrix);
        assert_eq!(rates[0], ("100.0%".to_string(), "50.0%".to_string()));
        assert_eq!(rates[1], ("0.0%".to_string(), "-".to_string()));
        assert_eq!(rates[2], ("-".to_string(), "-".to_string()));
        assert_eq!(optional(None), "-");
        assert_eq!(optional(Some(0.25)), "0.2500");
        // The figure renders at twice its layout size.
        let img = render_confusion(&matrix, "t", "s");
        assert_eq!(img.width() % RESOLUTION, 0);
        assert!(img.width() >= 2 * 450, "{:?}", img.dimensions());
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

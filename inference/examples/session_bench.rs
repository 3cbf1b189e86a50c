//! Model-only throughput of ONNX Runtime sessions: the tiles of a raster's tile plan,
//! read, normalised and held in memory first, then run through one session batch by
//! batch with nothing else going on. It gives the floor that `risk-infer` is held to (the
//! same tiles through the same session settings; `bench/infer_vs_anchor.sh`) and the
//! table of session settings in `bench/README.md` (`--sweep`: each setting varied alone
//! from the defaults, in one process, so the ratios share the machine's load).
//!
//! ```text
//! cargo run --release --example session_bench -- MODEL RASTER [--tile 512] [--overlap 64]
//!     [--batch 4] [--threads 2] [--tiles N] [--sweep]
//! ```
//!
//! Prints one line per setting: tiles, seconds, tiles per second, milliseconds per tile.

use std::time::Instant;

use risk_inference::raster::{InputRaster, Window};
use risk_inference::session::{Device, Model, Optimization, SessionOptions};
use risk_inference::tiling::{TilePlan, reflect};

struct Args {
    model: String,
    raster: String,
    tile: Option<usize>,
    overlap: Option<usize>,
    batch: usize,
    threads: usize,
    tiles: Option<usize>,
    sweep: bool,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut pos = Vec::new();
    let mut a = Args {
        model: String::new(),
        raster: String::new(),
        tile: None,
        overlap: None,
        batch: 4,
        threads: 2,
        tiles: None,
        sweep: false,
    };
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} takes a number"))
        };
        match arg.as_str() {
            "--tile" => a.tile = Some(num("--tile")?),
            "--overlap" => a.overlap = Some(num("--overlap")?),
            "--batch" => a.batch = num("--batch")?.max(1),
            "--threads" => a.threads = num("--threads")?,
            "--tiles" => a.tiles = Some(num("--tiles")?),
            "--sweep" => a.sweep = true,
            _ => pos.push(arg),
        }
    }
    let [model, raster] =
        <[String; 2]>::try_from(pos).map_err(|_| "usage: session_bench MODEL RASTER [options]")?;
    a.model = model;
    a.raster = raster;
    Ok(a)
}

/// The plan's tiles of `raster`, normalised as the pipeline does, `(C, h, w)` each.
fn load_tiles(model: &Model, path: &str, tile: usize, overlap: usize, limit: Option<usize>) -> Vec<Vec<f32>> {
    let info = model.info();
    let raster = InputRaster::open(path).expect("raster opens");
    let (w, h) = (raster.width(), raster.height());
    let plan = TilePlan::new(w, h, tile, overlap);
    let bands = info.bands.clone();
    let (th, tw) = (plan.tile_height, plan.tile_width);
    let mut tiles = Vec::new();
    'rows: for k in 0..plan.ys.len() {
        for t in plan.row_tiles(k, 0, w) {
            if limit.is_some_and(|n| tiles.len() >= n) {
                break 'rows;
            }
            let sy: Vec<usize> = (0..th).map(|y| reflect(t.y + y as isize, h)).collect();
            let sx: Vec<usize> = (0..tw).map(|x| reflect(t.x + x as isize, w)).collect();
            let (y0, y1) = (*sy.iter().min().unwrap(), *sy.iter().max().unwrap() + 1);
            let (x0, x1) = (*sx.iter().min().unwrap(), *sx.iter().max().unwrap() + 1);
            let win = Window::new(x0, y0, x1 - x0, y1 - y0);
            let mut raw = vec![0f32; bands.len() * win.pixels()];
            raster.read_bands(&bands, win, &mut raw).expect("tile reads");
            let mut data = vec![0f32; bands.len() * th * tw];
            for (b, &band) in bands.iter().enumerate() {
                let scale = info.scale_for(b, &raster.band_type_name(band).expect("band type"));
                let (a, off) = (scale / info.std[b], -info.mean[b] / info.std[b]);
                let src = &raw[b * win.pixels()..(b + 1) * win.pixels()];
                for (y, &yy) in sy.iter().enumerate() {
                    for (x, &xx) in sx.iter().enumerate() {
                        data[b * th * tw + y * tw + x] = src[(yy - y0) * win.width + xx - x0] * a + off;
                    }
                }
            }
            tiles.push(data);
        }
    }
    tiles
}

fn main() {
    let args = parse().unwrap_or_else(|e| {
        eprintln!("session_bench: {e}");
        std::process::exit(2)
    });
    let base = SessionOptions {
        device: Device::Cpu,
        threads: args.threads,
        ..SessionOptions::default()
    };
    let probe = Model::load(&args.model, &base).expect("model loads");
    let tile = args.tile.unwrap_or(probe.info().tile_size);
    let overlap = args.overlap.unwrap_or(probe.info().tile_overlap);
    let tiles = load_tiles(&probe, &args.raster, tile, overlap, args.tiles);
    let plan = {
        let r = InputRaster::open(&args.raster).expect("raster opens");
        TilePlan::new(r.width(), r.height(), tile, overlap)
    };
    drop(probe);
    let (th, tw) = (plan.tile_height, plan.tile_width);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut settings: Vec<(String, SessionOptions, usize)> =
        vec![("defaults".into(), base.clone(), args.batch)];
    if args.sweep {
        let with = |f: &dyn Fn(&mut SessionOptions)| {
            let mut o = base.clone();
            f(&mut o);
            o
        };
        for t in [1, cores, 2 * cores] {
            if t != args.threads {
                settings.push((format!("threads {t}"), with(&|o| o.threads = t), args.batch));
            }
        }
        settings.push((
            "optimisation layout (Level3)".into(),
            with(&|o| o.optimization = Optimization::Layout),
            args.batch,
        ));
        settings.push((
            "optimisation extended".into(),
            with(&|o| o.optimization = Optimization::Extended),
            args.batch,
        ));
        settings.push(("spinning on".into(), with(&|o| o.spinning = true), args.batch));
        settings.push(("arena off".into(), with(&|o| o.arena = false), args.batch));
        settings.push((
            "memory pattern off".into(),
            with(&|o| o.memory_pattern = false),
            args.batch,
        ));
        for b in [1, 2, 8] {
            if b != args.batch {
                settings.push((format!("batch {b}"), base.clone(), b));
            }
        }
    }
    println!(
        "{} ({}x{} tiles of {tw}x{th}, overlap {overlap}), model {}, {} threads, batch {}, {cores} cores",
        args.raster,
        plan.xs.len(),
        plan.ys.len(),
        args.model,
        args.threads,
        args.batch
    );
    for (name, options, batch) in settings {
        let mut model = Model::load(&args.model, &options).expect("model loads");
        let mut input = Vec::new();
        let mut probs = Vec::new();
        let mut run = |chunk: &[Vec<f32>], model: &mut Model| {
            input.clear();
            for t in chunk {
                input.extend_from_slice(t);
            }
            probs.resize(chunk.len() * 3 * th * tw, 0.0);
            model
                .run(&input, chunk.len(), th, tw, &mut probs)
                .expect("model runs");
        };
        // One warm-up batch (first-run allocations and kernel choices), not timed.
        run(&tiles[..batch.min(tiles.len())], &mut model);
        let t0 = Instant::now();
        for chunk in tiles.chunks(batch) {
            run(chunk, &mut model);
        }
        let s = t0.elapsed().as_secs_f64();
        println!(
            "{name:<30} {:>4} tiles {s:>7.2} s {:>7.2} tiles/s {:>7.1} ms/tile",
            tiles.len(),
            tiles.len() as f64 / s,
            1000.0 * s / tiles.len() as f64
        );
    }
}

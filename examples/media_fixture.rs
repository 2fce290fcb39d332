//! Writes a photograph-like JPEG for `scripts/bench-media`: `media_fixture OUT WIDTH HEIGHT SEED`.
//! Smooth gradients with fine noise, so it compresses like a real photograph (a 12-megapixel
//! picture comes out at a few megabytes).

use image::{Rgb, RgbImage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, width, height, seed] = args.as_slice() else {
        return Err("usage: media_fixture OUT WIDTH HEIGHT SEED".into());
    };
    let (width, height, seed): (u32, u32, u32) = (width.parse()?, height.parse()?, seed.parse()?);
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let picture = RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = (state % 24) as i32 - 12;
        let fx = x as f32 / width as f32;
        let fy = y as f32 / height as f32;
        let wave = ((fx * 9.0 + seed as f32).sin() * (fy * 7.0).cos() * 60.0) as i32;
        let c = |base: f32, v: i32| (base + v as f32).clamp(0.0, 255.0) as u8;
        Rgb([
            c(90.0 + 120.0 * fx, wave + noise),
            c(80.0 + 100.0 * fy, noise - wave / 2),
            c(160.0 - 90.0 * fx * fy, noise),
        ])
    });
    let file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(file, 92);
    encoder.encode_image(&picture)?;
    Ok(())
}

//! GitHub-style 5×5 identicons as small inline SVGs.

use std::fmt::Write as _;

use super::SafeHtml;

const GRID: u32 = 5;
/// Columns 0..=2 are chosen; columns 3 and 4 mirror 1 and 0.
const HALF: u32 = 3;

/// A 5×5 mirrored identicon for `seed`, `size_px` wide and high.
///
/// Colours are attributes rather than `style`, because the site's CSP forbids inline styles.
pub fn identicon_svg(seed: u32, size_px: u32) -> SafeHtml {
    // A post page draws one per comment, and formatting them showed as the page's largest cost:
    // keep the ones already drawn (a few thousand, a few hundred bytes each).
    static CACHE: std::sync::LazyLock<
        std::sync::RwLock<std::collections::HashMap<(u32, u32), String>>,
    > = std::sync::LazyLock::new(Default::default);
    const MAX_CACHED: usize = 4096;
    if let Ok(cache) = CACHE.read()
        && let Some(svg) = cache.get(&(seed, size_px))
    {
        return SafeHtml(svg.clone());
    }
    let svg = draw_identicon(seed, size_px);
    if let Ok(mut cache) = CACHE.write() {
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert((seed, size_px), svg.0.clone());
    }
    svg
}

fn draw_identicon(seed: u32, size_px: u32) -> SafeHtml {
    // Commenter ids are often consecutive; mixing first makes neighbours look unrelated.
    let hash = mix(seed);
    let mut cells = hash & ((1 << (GRID * HALF)) - 1);
    if cells == 0 {
        // An empty face would be indistinguishable from the background; fill the centre.
        cells = 1 << (2 * GRID + 2);
    }
    let hue = ((hash >> 16) % 360) as u16;
    let (r, g, b) = hsl_to_rgb(hue, 0.55, 0.5);

    let mut path = String::new();
    for y in 0..GRID {
        let mut x = 0;
        // Runs of filled cells become one rectangle each, which keeps `d` short.
        while x < GRID {
            if !filled(cells, x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < GRID && filled(cells, x, y) {
                x += 1;
            }
            let run = x - start;
            // Writing to a String cannot fail.
            let _ = write!(path, "M{start} {y}h{run}v1h-{run}z");
        }
    }

    // The background and crisp edges come from the stylesheet (`svg.avatar`), and inline SVG in
    // HTML needs no xmlns: a page prints a hundred of these, so every byte counts a hundred times.
    SafeHtml(format!(
        concat!(
            r#"<svg viewBox="0 0 5 5" width="{size}" height="{size}" class="avatar" aria-hidden="true">"#,
            r##"<path fill="#{r:02x}{g:02x}{b:02x}" d="{path}"/></svg>"##,
        ),
        // concat! hides the names from format!'s implicit capture, so pass them explicitly.
        size = size_px,
        r = r,
        g = g,
        b = b,
        path = path,
    ))
}

/// Whether cell (`x`, `y`) is on, reading the mirrored half from the chosen columns.
fn filled(cells: u32, x: u32, y: u32) -> bool {
    let column = if x < HALF { x } else { GRID - 1 - x };
    cells & (1 << (column * GRID + y)) != 0
}

/// The murmur3 finaliser: cheap, and every input bit affects every output bit.
fn mix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Standard HSL → RGB conversion; `hue` in degrees, `s` and `l` in 0..=1.
fn hsl_to_rgb(hue: u16, s: f32, l: f32) -> (u8, u8, u8) {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let h = f32::from(hue) / 60.0;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match hue / 60 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    // Values stay within 0..=255 by construction; the cast only drops the fraction.
    let byte = |v: f32| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    (byte(r), byte(g), byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_for_a_seed() {
        assert_eq!(identicon_svg(42, 32), identicon_svg(42, 32));
    }

    #[test]
    fn different_seeds_usually_differ() {
        let svgs: std::collections::HashSet<String> = (0..100)
            .map(|s| identicon_svg(s, 32).into_string())
            .collect();
        assert!(svgs.len() > 95, "only {} distinct of 100", svgs.len());
    }

    #[test]
    fn shape_and_attributes() {
        let svg = identicon_svg(7, 48).into_string();
        assert!(svg.starts_with(r#"<svg viewBox="0 0 5 5""#));
        assert!(svg.contains(r#"width="48" height="48""#));
        assert!(svg.contains(r#"class="avatar" aria-hidden="true""#));
        assert_eq!(svg.matches("<path").count(), 1);
        assert!(!svg.contains("style"));
    }

    #[test]
    fn cells_are_mirrored() {
        for seed in 0..50 {
            let cells = mix(seed) & 0x7fff;
            for y in 0..GRID {
                assert_eq!(filled(cells, 0, y), filled(cells, 4, y));
                assert_eq!(filled(cells, 1, y), filled(cells, 3, y));
            }
        }
    }

    #[test]
    fn hsl_conversion_matches_known_colours() {
        assert_eq!(hsl_to_rgb(0, 1.0, 0.5), (255, 0, 0));
        assert_eq!(hsl_to_rgb(120, 1.0, 0.5), (0, 255, 0));
        assert_eq!(hsl_to_rgb(240, 1.0, 0.5), (0, 0, 255));
    }
}

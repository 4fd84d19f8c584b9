//! Labelled animated GIFs from a sequence of grey pictures.
//!
//! Used to blink through the epochs (or bands) of one source: each
//! [`Frame`] is an already rendered 8-bit picture plus a short caption such
//! as the observation date. [`animated_gif`] lays every frame out the same
//! way so that the eye sees only what changes between them:
//!
//! ```text
//! +------------------------------+  ^
//! | label text (white on black)  |  | label_height(canvas width)
//! +------------------------------+  v
//! |      black border            |  ^
//! |    +------------------+      |  |
//! |    | picture, upscaled|      |  | largest scaled frame height
//! |    | by `scale`       |      |  |
//! |    +------------------+      |  |
//! |                              |  v
//! +------------------------------+
//!  <--- largest scaled frame width --->
//! ```
//!
//! * Every frame is enlarged by the **same** integer factor (nearest
//!   neighbour), `max(opts.scale, ceil(opts.min_width / widest frame))`, so
//!   that pixels of different frames stay comparable and tiny cutouts become
//!   big enough to see.
//! * Frames smaller than the largest one are centred on a black background
//!   (when the spare space is odd, the extra pixel goes right / below).
//! * The label strip uses the public-domain 8×8 bitmap font of the
//!   `font8x8` crate, drawn at 2× on canvases at least
//!   [`TEXT_2X_MIN_WIDTH`] pixels wide and at 1× otherwise.
//!
//! The GIF uses one global 256-entry grey palette whose index *i* is the
//! colour (i, i, i), so frame pixels are written without any quantisation
//! and a decoder's palette indices equal the input grey levels.
//!
//! Orientation: [`Frame::gray`] stores the top row first, as GIF does, so no
//! flip happens here (the renderer has already turned FITS rows around).

use std::borrow::Cow;

use font8x8::legacy::BASIC_LEGACY;

/// One picture of an animation: 8-bit grey pixels and a caption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` grey levels (0 = black, 255 = white), top row first.
    pub gray: Vec<u8>,
    /// Caption drawn above the picture. Printable ASCII is drawn as is,
    /// every other character as `?`; text that does not fit ends in `..`.
    pub label: String,
}

/// How [`animated_gif`] scales and times the frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GifOptions {
    /// Smallest integer enlargement factor (nearest neighbour); the factor
    /// actually used is raised further until the widest frame is at least
    /// [`min_width`](Self::min_width) pixels wide. `0` counts as `1`.
    /// Default `1`, i.e. let `min_width` decide.
    pub scale: usize,
    /// Width in pixels that the widest (scaled) frame must reach, which
    /// also leaves room for a readable label. Default `160`.
    pub min_width: usize,
    /// Time each frame stays on screen, in centiseconds (1/100 s).
    /// Default `60`. Browsers show a delay of `0` or `1` as about 10 cs.
    pub delay_cs: u16,
    /// Repeat the animation endlessly (NETSCAPE2.0 looping extension);
    /// when `false` it plays once. Default `true`.
    pub loop_forever: bool,
}

impl Default for GifOptions {
    fn default() -> Self {
        Self {
            scale: 1,
            min_width: 160,
            delay_cs: 60,
            loop_forever: true,
        }
    }
}

/// Why an animation could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum AnimError {
    /// The frame list was empty.
    #[error("no frames to animate: an animation needs at least one picture")]
    NoFrames,
    /// A frame has no pixels.
    #[error("frame {index} is {width}×{height}: every frame needs at least one pixel")]
    EmptyFrame {
        /// Position of the frame in the input, from 0.
        index: usize,
        /// Its declared width.
        width: usize,
        /// Its declared height.
        height: usize,
    },
    /// A frame's pixel buffer does not match its declared size.
    #[error("frame {index} is {width}×{height} = {expected} pixels but has {actual} grey values")]
    PixelCount {
        /// Position of the frame in the input, from 0.
        index: usize,
        /// Its declared width.
        width: usize,
        /// Its declared height.
        height: usize,
        /// `width * height`.
        expected: usize,
        /// `gray.len()`.
        actual: usize,
    },
    /// The scaled canvas would exceed what a GIF can hold.
    #[error(
        "the animation would be {width}×{height} pixels; a GIF is at most 65535 pixels on each side"
    )]
    TooLarge {
        /// Canvas width that was asked for (saturated at `usize::MAX`).
        width: usize,
        /// Canvas height that was asked for (saturated at `usize::MAX`).
        height: usize,
    },
    /// Memory for the canvas could not be reserved.
    #[error("not enough memory for a {width}×{height} animation canvas")]
    OutOfMemory {
        /// Canvas width.
        width: usize,
        /// Canvas height.
        height: usize,
    },
    /// The GIF encoder failed.
    #[error("GIF encoding failed: {0}")]
    Encode(#[from] gif::EncodingError),
}

/// Canvases at least this wide draw the label font at 2× (16×16 pixel
/// glyphs); narrower ones at 1×, so that a typical date label fits on a
/// canvas of the default minimum width.
pub const TEXT_2X_MIN_WIDTH: usize = 320;

/// Size of a font glyph in font pixels.
const GLYPH: usize = 8;
/// Blank font pixels above and below the text in the label strip.
const PAD_Y: usize = 3;
/// Blank font pixels left and right of the text in the label strip.
const PAD_X: usize = 4;
/// Marker that replaces the tail of a label too long for the canvas.
const CUT_MARK: &[u8] = b"..";

/// Font magnification (1 or 2) used for labels on a canvas this wide.
pub fn label_text_scale(canvas_width: usize) -> usize {
    if canvas_width >= TEXT_2X_MIN_WIDTH {
        2
    } else {
        1
    }
}

/// Height in pixels of the label strip above the picture on a canvas this
/// wide: 14 pixels below [`TEXT_2X_MIN_WIDTH`], 28 from there on.
pub fn label_height(canvas_width: usize) -> usize {
    label_text_scale(canvas_width) * (GLYPH + 2 * PAD_Y)
}

/// Number of characters that fit on one label line of a canvas this wide.
pub fn label_capacity(canvas_width: usize) -> usize {
    let s = label_text_scale(canvas_width);
    canvas_width.saturating_sub(2 * PAD_X * s) / (GLYPH * s)
}

/// Encodes `frames` as one animated GIF, laid out as described in the
/// [module documentation](self).
///
/// # Errors
///
/// [`AnimError::NoFrames`] for an empty slice, [`AnimError::EmptyFrame`] and
/// [`AnimError::PixelCount`] for a malformed frame, [`AnimError::TooLarge`]
/// when the scaled canvas exceeds 65535 pixels on a side,
/// [`AnimError::OutOfMemory`] when its buffer cannot be reserved, and
/// [`AnimError::Encode`] when the encoder fails.
pub fn animated_gif(frames: &[Frame], opts: &GifOptions) -> Result<Vec<u8>, AnimError> {
    let layout = Layout::new(frames, opts)?;
    // The checks in Layout::new guarantee these fit.
    let too_large = || AnimError::TooLarge {
        width: layout.canvas_w,
        height: layout.canvas_h,
    };
    let w16 = u16::try_from(layout.canvas_w).map_err(|_| too_large())?;
    let h16 = u16::try_from(layout.canvas_h).map_err(|_| too_large())?;

    let mut canvas = Vec::new();
    canvas
        .try_reserve_exact(layout.canvas_w * layout.canvas_h)
        .map_err(|_| AnimError::OutOfMemory {
            width: layout.canvas_w,
            height: layout.canvas_h,
        })?;
    canvas.resize(layout.canvas_w * layout.canvas_h, 0);

    let palette: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, v]).collect();
    // Grey astronomical frames compress poorly with LZW; a third of the raw
    // size per frame avoids most reallocations without overcommitting.
    let guess = (canvas.len() / 3).saturating_mul(frames.len());
    let out = Vec::with_capacity(guess.min(64 << 20) + 1024);
    let mut encoder = gif::Encoder::new(out, w16, h16, &palette)?;
    if opts.loop_forever {
        encoder.set_repeat(gif::Repeat::Infinite)?;
    }
    for frame in frames {
        layout.compose(frame, &mut canvas);
        let gif_frame = gif::Frame {
            width: w16,
            height: h16,
            delay: opts.delay_cs,
            buffer: Cow::Borrowed(&canvas),
            ..gif::Frame::default()
        };
        encoder.write_frame(&gif_frame)?;
    }
    Ok(encoder.into_inner()?)
}

/// Geometry shared by all frames of one animation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Enlargement factor applied to every frame.
    scale: usize,
    canvas_w: usize,
    canvas_h: usize,
    /// Height of the label strip; the picture area starts on this row.
    strip_h: usize,
    /// Height of the picture area below the strip.
    picture_h: usize,
}

impl Layout {
    /// Validates the frames and derives the canvas geometry.
    fn new(frames: &[Frame], opts: &GifOptions) -> Result<Self, AnimError> {
        if frames.is_empty() {
            return Err(AnimError::NoFrames);
        }
        let mut max_w = 0;
        let mut max_h = 0;
        for (index, f) in frames.iter().enumerate() {
            if f.width == 0 || f.height == 0 {
                return Err(AnimError::EmptyFrame {
                    index,
                    width: f.width,
                    height: f.height,
                });
            }
            let expected = f.width.checked_mul(f.height);
            if expected != Some(f.gray.len()) {
                return Err(AnimError::PixelCount {
                    index,
                    width: f.width,
                    height: f.height,
                    expected: expected.unwrap_or(usize::MAX),
                    actual: f.gray.len(),
                });
            }
            max_w = max_w.max(f.width);
            max_h = max_h.max(f.height);
        }
        let scale = opts.scale.max(1).max(opts.min_width.div_ceil(max_w));
        let canvas_w = max_w.saturating_mul(scale);
        let picture_h = max_h.saturating_mul(scale);
        let strip_h = label_height(canvas_w);
        let canvas_h = picture_h.saturating_add(strip_h);
        let limit = usize::from(u16::MAX);
        if canvas_w > limit || canvas_h > limit {
            return Err(AnimError::TooLarge {
                width: canvas_w,
                height: canvas_h,
            });
        }
        Ok(Self {
            scale,
            canvas_w,
            canvas_h,
            strip_h,
            picture_h,
        })
    }

    /// Draws `frame` (label and scaled picture) over the whole `canvas`.
    fn compose(&self, frame: &Frame, canvas: &mut [u8]) {
        // Clearing everything is simpler than tracking which border and
        // strip pixels the previous frame touched, and costs one memset.
        canvas.fill(0);
        draw_label(canvas, self.canvas_w, &frame.label);

        let s = self.scale;
        let w = self.canvas_w;
        let fw = frame.width * s;
        let fh = frame.height * s;
        let x0 = (w - fw) / 2;
        let y0 = self.strip_h + (self.picture_h - fh) / 2;
        for (r, src_row) in frame.gray.chunks_exact(frame.width).enumerate() {
            let start = (y0 + r * s) * w + x0;
            let first = &mut canvas[start..start + fw];
            if s == 1 {
                first.copy_from_slice(src_row);
                continue;
            }
            for (out, &v) in first.chunks_exact_mut(s).zip(src_row) {
                out.fill(v);
            }
            // The other s-1 output rows are identical: copy the finished one.
            for k in 1..s {
                canvas.copy_within(start..start + fw, start + k * w);
            }
        }
    }
}

/// The bytes actually drawn for `label` on a line of `capacity` characters:
/// non-printable-ASCII characters become `?` and an over-long label keeps
/// its start followed by [`CUT_MARK`].
fn fit_label(label: &str, capacity: usize) -> Vec<u8> {
    let mut text: Vec<u8> = label
        .chars()
        .take(capacity.saturating_add(1))
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c as u8
            } else {
                b'?'
            }
        })
        .collect();
    if text.len() > capacity {
        let keep = capacity.saturating_sub(CUT_MARK.len());
        text.truncate(keep);
        text.extend_from_slice(&CUT_MARK[..capacity - keep]);
    }
    text
}

/// Draws `label` in white into the (already black) strip at the top of a
/// canvas `canvas_w` pixels wide.
fn draw_label(canvas: &mut [u8], canvas_w: usize, label: &str) {
    let s = label_text_scale(canvas_w);
    let text = fit_label(label, label_capacity(canvas_w));
    let top = PAD_Y * s;
    for (i, &ch) in text.iter().enumerate() {
        let glyph = BASIC_LEGACY[usize::from(ch & 0x7f)];
        let left = (PAD_X + i * GLYPH) * s;
        for (gy, bits) in glyph.iter().enumerate() {
            if *bits == 0 {
                continue;
            }
            let row_start = (top + gy * s) * canvas_w;
            for gx in 0..GLYPH {
                // font8x8 stores the leftmost pixel of a glyph row in bit 0.
                if bits >> gx & 1 == 1 {
                    let x = left + gx * s;
                    for dy in 0..s {
                        let at = row_start + dy * canvas_w + x;
                        canvas[at..at + s].fill(255);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a decoder sees in one GIF.
    struct Decoded {
        width: usize,
        height: usize,
        repeat: gif::Repeat,
        palette: Vec<u8>,
        /// (delay, full-canvas indexed pixels) per frame.
        frames: Vec<(u16, Vec<u8>)>,
    }

    fn decode(bytes: &[u8]) -> Decoded {
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::Indexed);
        let mut decoder = options.read_info(bytes).expect("valid GIF header");
        let width = usize::from(decoder.width());
        let height = usize::from(decoder.height());
        let palette = decoder.global_palette().expect("global palette").to_vec();
        let mut frames = Vec::new();
        while let Some(f) = decoder.read_next_frame().expect("valid frame") {
            assert_eq!((f.left, f.top), (0, 0));
            assert_eq!(
                (usize::from(f.width), usize::from(f.height)),
                (width, height)
            );
            assert!(f.palette.is_none(), "frames must use the global palette");
            frames.push((f.delay, f.buffer.to_vec()));
        }
        Decoded {
            width,
            height,
            repeat: decoder.repeat(),
            palette,
            frames,
        }
    }

    /// A picture whose every pixel differs from its neighbours, so that a
    /// flip, shift or wrong scale factor cannot go unnoticed.
    fn pattern(width: usize, height: usize, label: &str) -> Frame {
        let gray = (0..width * height)
            .map(|i| {
                let (x, y) = (i % width, i / width);
                (1 + x * 37 + y * 101) as u8 | 1
            })
            .collect();
        Frame {
            width,
            height,
            gray,
            label: label.to_string(),
        }
    }

    fn strip(d: &Decoded, frame: usize) -> &[u8] {
        &d.frames[frame].1[..label_height(d.width) * d.width]
    }

    #[test]
    fn frame_count_canvas_size_delay_and_palette() {
        let frames: Vec<Frame> = (0..4)
            .map(|i| pattern(128, 100, &format!("e{i}")))
            .collect();
        let opts = GifOptions {
            delay_cs: 25,
            ..GifOptions::default()
        };
        let d = decode(&animated_gif(&frames, &opts).unwrap());
        assert_eq!(d.frames.len(), 4);
        // ceil(160 / 128) = 2, so 256 wide with a 1× label strip.
        assert_eq!(d.width, 256);
        assert_eq!(d.height, 200 + label_height(256));
        assert_eq!(label_height(256), 14);
        assert!(d.frames.iter().all(|(delay, _)| *delay == 25));
        assert_eq!(d.repeat, gif::Repeat::Infinite);
        assert_eq!(d.palette.len(), 768);
        for (i, rgb) in d.palette.chunks_exact(3).enumerate() {
            assert_eq!(rgb, [i as u8; 3]);
        }
    }

    #[test]
    fn loop_forever_false_plays_once() {
        let opts = GifOptions {
            loop_forever: false,
            ..GifOptions::default()
        };
        let d = decode(&animated_gif(&[pattern(4, 4, "")], &opts).unwrap());
        assert_eq!(d.repeat, gif::Repeat::Finite(0));
    }

    #[test]
    fn scale_option_wins_over_min_width() {
        let opts = GifOptions {
            scale: 3,
            min_width: 10,
            ..GifOptions::default()
        };
        let d = decode(&animated_gif(&[pattern(40, 30, "x")], &opts).unwrap());
        assert_eq!((d.width, d.height), (120, 90 + label_height(120)));
        // scale 0 behaves as 1.
        let opts = GifOptions {
            scale: 0,
            min_width: 0,
            ..GifOptions::default()
        };
        let d = decode(&animated_gif(&[pattern(40, 30, "x")], &opts).unwrap());
        assert_eq!((d.width, d.height), (40, 30 + label_height(40)));
    }

    #[test]
    fn picture_area_is_the_upscaled_input() {
        let frame = pattern(7, 5, "pic");
        let opts = GifOptions {
            scale: 3,
            min_width: 0,
            ..GifOptions::default()
        };
        let d = decode(&animated_gif(std::slice::from_ref(&frame), &opts).unwrap());
        let strip_h = label_height(21);
        assert_eq!((d.width, d.height), (21, 15 + strip_h));
        let pixels = &d.frames[0].1;
        for y in 0..15 {
            for x in 0..21 {
                assert_eq!(
                    pixels[(strip_h + y) * 21 + x],
                    frame.gray[(y / 3) * 7 + x / 3],
                    "pixel ({x}, {y})"
                );
            }
        }
    }

    #[test]
    fn smaller_frames_are_centred_on_black() {
        let big = pattern(6, 4, "big");
        let small = pattern(2, 2, "small");
        let opts = GifOptions {
            scale: 2,
            min_width: 0,
            ..GifOptions::default()
        };
        let d = decode(&animated_gif(&[big, small.clone()], &opts).unwrap());
        let strip_h = label_height(12);
        assert_eq!((d.width, d.height), (12, 8 + strip_h));
        let pixels = &d.frames[1].1;
        // The 4×4 scaled picture starts at x = (12-4)/2 = 4, y = (8-4)/2 = 2.
        for y in 0..8 {
            for x in 0..12 {
                let inside = (4..8).contains(&x) && (2..6).contains(&y);
                let expected = if inside {
                    small.gray[((y - 2) / 2) * 2 + (x - 4) / 2]
                } else {
                    0
                };
                assert_eq!(pixels[(strip_h + y) * 12 + x], expected, "({x}, {y})");
            }
        }
    }

    #[test]
    fn label_strip_has_text_only_when_labelled() {
        let frames = [pattern(64, 64, "2010-05-01"), pattern(64, 64, "")];
        let d = decode(&animated_gif(&frames, &GifOptions::default()).unwrap());
        let labelled = strip(&d, 0);
        let white = labelled.iter().filter(|&&v| v == 255).count();
        assert!(white > 50, "only {white} white pixels in the label strip");
        assert!(labelled.iter().all(|&v| v == 0 || v == 255));
        assert!(strip(&d, 1).iter().all(|&v| v == 0));
    }

    #[test]
    fn glyph_is_drawn_where_the_font_says() {
        for (width, s) in [(200, 1), (400, 2)] {
            let frame = pattern(width, 2, "A");
            let opts = GifOptions {
                min_width: 0,
                ..GifOptions::default()
            };
            let d = decode(&animated_gif(&[frame], &opts).unwrap());
            assert_eq!(label_text_scale(d.width), s);
            let strip = strip(&d, 0);
            let glyph = BASIC_LEGACY[usize::from(b'A')];
            for y in 0..label_height(d.width) {
                for x in 0..d.width {
                    let (fx, fy) = (x / s, y / s);
                    let lit = (PAD_X..PAD_X + GLYPH).contains(&fx)
                        && (PAD_Y..PAD_Y + GLYPH).contains(&fy)
                        && glyph[fy - PAD_Y] >> (fx - PAD_X) & 1 == 1;
                    let expected = if lit { 255 } else { 0 };
                    assert_eq!(strip[y * d.width + x], expected, "{s}×: ({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn fit_label_replaces_and_truncates() {
        assert_eq!(fit_label("abc", 10), b"abc");
        assert_eq!(fit_label("abcdef", 6), b"abcdef");
        assert_eq!(fit_label("abcdefg", 6), b"abcd..");
        assert_eq!(fit_label("été\t✓", 10), b"?t???");
        assert_eq!(fit_label("abc", 1), b".");
        assert_eq!(fit_label("abc", 0), b"");
        assert_eq!(fit_label("", 0), b"");
    }

    #[test]
    fn long_label_is_cut_without_panicking() {
        let label = "a very long label with ünïcödé ✓ and more ".repeat(40);
        for width in [1, 3, 20, 64, 160, 300] {
            let frame = pattern(width, 3, &label);
            let opts = GifOptions {
                min_width: 0,
                ..GifOptions::default()
            };
            let d = decode(&animated_gif(&[frame], &opts).unwrap());
            assert_eq!(d.width, width);
        }
        // On a 160-pixel canvas 19 characters fit: 17 of the label, then "..".
        assert_eq!(label_capacity(160), 19);
        let drawn = fit_label(&label, label_capacity(160));
        assert_eq!(drawn, b"a very long label..");
    }

    #[test]
    fn errors_for_bad_input() {
        let opts = GifOptions::default();
        assert!(matches!(animated_gif(&[], &opts), Err(AnimError::NoFrames)));

        let mut short = pattern(4, 4, "");
        short.gray.pop();
        let err = animated_gif(&[pattern(4, 4, ""), short], &opts).unwrap_err();
        assert!(matches!(
            err,
            AnimError::PixelCount {
                index: 1,
                width: 4,
                height: 4,
                expected: 16,
                actual: 15
            }
        ));
        assert_eq!(
            err.to_string(),
            "frame 1 is 4×4 = 16 pixels but has 15 grey values"
        );

        let empty = Frame {
            width: 0,
            height: 5,
            gray: vec![],
            label: String::new(),
        };
        assert!(matches!(
            animated_gif(&[empty], &opts),
            Err(AnimError::EmptyFrame { index: 0, .. })
        ));

        let overflow = Frame {
            width: usize::MAX,
            height: 2,
            gray: vec![0; 4],
            label: String::new(),
        };
        assert!(matches!(
            animated_gif(&[overflow], &opts),
            Err(AnimError::PixelCount { .. })
        ));

        let huge_scale = GifOptions {
            scale: usize::MAX,
            ..GifOptions::default()
        };
        assert!(matches!(
            animated_gif(&[pattern(3, 3, "")], &huge_scale),
            Err(AnimError::TooLarge { .. })
        ));
        let too_wide = GifOptions {
            scale: 1,
            min_width: 70_000,
            ..GifOptions::default()
        };
        let err = animated_gif(&[pattern(3, 3, "")], &too_wide).unwrap_err();
        assert!(matches!(err, AnimError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn ten_frames_encode_quickly() {
        // A smoke test of the common request, not a benchmark: a debug build
        // on a loaded machine still finishes far below this bound.
        let frames: Vec<Frame> = (0..10)
            .map(|i| pattern(128, 128, &format!("{i}")))
            .collect();
        let start = std::time::Instant::now();
        let gif = animated_gif(&frames, &GifOptions::default()).unwrap();
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(decode(&gif).frames.len(), 10);
    }
}

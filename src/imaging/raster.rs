//! A plain two-dimensional pixel buffer, the common currency of the imaging core.
//!
//! Pixels are stored row-major with the first FITS axis (x, `NAXIS1`) varying
//! fastest, exactly as FITS stores them on disk, so a buffer read by cfitsio
//! needs no transposition. Index `(ix, iy)` is zero-based; the FITS pixel
//! coordinate of that pixel's centre is `(ix + 1, iy + 1)`.

/// A row-major 2-D image; `data.len() == width * height`.
#[derive(Debug, Clone, PartialEq)]
pub struct Raster<T> {
    /// Number of columns (`NAXIS1`).
    pub width: usize,
    /// Number of rows (`NAXIS2`).
    pub height: usize,
    /// Pixel values, row after row.
    pub data: Vec<T>,
}

impl<T: Copy> Raster<T> {
    /// An image of the given size with every pixel set to `value`.
    pub fn filled(width: usize, height: usize, value: T) -> Self {
        Self {
            width,
            height,
            data: vec![value; width * height],
        }
    }

    /// Wraps an existing buffer; panics if its length does not match the size,
    /// because a mismatched buffer is always a programming error.
    pub fn from_vec(width: usize, height: usize, data: Vec<T>) -> Self {
        assert_eq!(
            data.len(),
            width * height,
            "buffer does not match {width}x{height}"
        );
        Self {
            width,
            height,
            data,
        }
    }

    /// The value at zero-based `(ix, iy)`.
    #[inline]
    pub fn get(&self, ix: usize, iy: usize) -> T {
        self.data[iy * self.width + ix]
    }

    /// Sets the value at zero-based `(ix, iy)`.
    #[inline]
    pub fn set(&mut self, ix: usize, iy: usize, value: T) {
        self.data[iy * self.width + ix] = value;
    }

    /// One row as a slice.
    #[inline]
    pub fn row(&self, iy: usize) -> &[T] {
        &self.data[iy * self.width..(iy + 1) * self.width]
    }

    /// Applies `f` to every pixel, producing an image of another type.
    pub fn map<U: Copy>(&self, f: impl Fn(T) -> U) -> Raster<U> {
        Raster {
            width: self.width,
            height: self.height,
            data: self.data.iter().map(|&v| f(v)).collect(),
        }
    }
}

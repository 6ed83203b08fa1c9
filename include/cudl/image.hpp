#pragma once
// Pictures of a model: 8-bit grayscale PNG files (written with zlib alone, no libpng), and the
// grid of first-layer filters everyone looks at while training an RBM or a Dense layer.
#include <cstdint>
#include <string>
#include <vector>

namespace cudl {

/// Writes pixels (height×width bytes, row-major, 0 black .. 255 white) as an 8-bit grayscale
/// PNG: signature, IHDR, IDAT chunks (scanlines with filter byte 0, deflated), IEND. The file
/// is written to path + ".tmp" and renamed over path, so an existing image is never left
/// half-written. Throws cudl::Error naming the file: width or height ≤ 0 or above 2^31 − 1,
/// pixels.size() ≠ width·height, a file that cannot be opened, written or renamed. Host only;
/// calls writing different paths may run on several threads at once.
void write_png_gray(const std::string& path, int64_t width, int64_t height,
                    const std::vector<uint8_t>& pixels);

/// Saves the first min(hidden, max_filters) filters of a V×H weight matrix (row-major, as
/// Dense and Rbm store it: W[v·hidden + h]) as one PNG. Filter h is column h (V values) shown
/// as a tile_height×tile_width image (V must equal tile_height·tile_width), each tile scaled on
/// its own from its min..max to 0..255 (a constant tile is mid-gray, 128).
/// Layout: n filters in a grid of cols = ceil(sqrt(n)) columns and rows = ceil(n / cols) rows,
/// filled row by row (filter h at grid row h / cols, column h % cols); a 1-pixel black (0)
/// separator between neighbouring tiles and no outer border, so the image is
/// (cols·tile_width + cols − 1) wide and (rows·tile_height + rows − 1) high; unused cells of the
/// last row are black. Throws cudl::Error naming the file: a non-positive size or max_filters,
/// weights.size() ≠ V·H, V ≠ tile_height·tile_width (expected vs found), a non-finite weight
/// in a shown filter, or any error of write_png_gray.
void save_filter_grid(const std::string& path, const std::vector<float>& weights, int64_t visible,
                      int64_t hidden, int64_t tile_height, int64_t tile_width,
                      int64_t max_filters = 100);

}  // namespace cudl

/**
 * File formats of ntk: numpy {@code .npy} arrays for inputs and outputs ({@link dev.ntk.io.Npy},
 * {@link dev.ntk.io.NpyArray}), {@code .npz} archives of them ({@link dev.ntk.io.Npz}) and Arrow
 * IPC kernel tiles ({@link dev.ntk.io.TileFiles}, {@link dev.ntk.io.Tile}).
 *
 * <h2>.npy files</h2>
 *
 * <p>Little-endian float32 ({@code <f4}) and float64 ({@code <f8}) arrays in C order, format
 * versions 1.0, 2.0 and 3.0; files are written as version 1.0 with the data at a multiple of 64
 * bytes, as numpy does. Values are always held as {@code double[]}.
 *
 * <h2>.npz files</h2>
 *
 * <p>Zip archives of {@code .npy} entries named {@code <name>.npy} ({@link dev.ntk.io.Npz}), as
 * {@code np.savez} (stored) and {@code np.savez_compressed} (deflated) write them; both are read
 * and written. Finite networks' parameters files are such archives.
 *
 * <h2>Kernel tiles</h2>
 *
 * <p>A tile holds one or more kernel matrices between rows {@code [row_offset, row_offset + rows)}
 * of x1 and columns {@code [col_offset, col_offset + cols)} of x2, in an Arrow IPC <em>file</em>
 * (random-access format) named {@code tile-r<row_offset>-c<col_offset>.arrow} with exactly one
 * record batch of {@code rows * cols} rows. Each kernel is one non-nullable column named after it
 * ({@code nngp}, {@code ntk}, ...), columns sorted by name, of type {@code float64} (Arrow {@code
 * FloatingPoint(DOUBLE)}) or {@code float32} ({@code FloatingPoint(SINGLE)}); row {@code
 * i * cols + j} holds the kernel between x1 row {@code row_offset + i} and x2 row {@code
 * col_offset + j} (row-major). The schema's custom metadata, all values strings:
 *
 * <table>
 *   <caption>Tile schema metadata</caption>
 *   <tr><th>key</th><th>value</th></tr>
 *   <tr><td>{@code ntk.format_version}</td><td>{@code 2} (version 1 had no checksum; such tiles
 *       are not read, and a run recomputes them)</td></tr>
 *   <tr><td>{@code ntk.model_hash}</td><td>hash of the model the tile was computed for</td></tr>
 *   <tr><td>{@code ntk.inputs_hash}</td><td>hash of the x1 and x2 inputs</td></tr>
 *   <tr><td>{@code ntk.row_offset}</td><td>first x1 row (decimal)</td></tr>
 *   <tr><td>{@code ntk.col_offset}</td><td>first x2 row (decimal)</td></tr>
 *   <tr><td>{@code ntk.rows}</td><td>number of x1 rows in the tile</td></tr>
 *   <tr><td>{@code ntk.cols}</td><td>number of x2 rows in the tile</td></tr>
 *   <tr><td>{@code ntk.dtype}</td><td>{@code float32} or {@code float64}</td></tr>
 *   <tr><td>{@code ntk.kernels}</td><td>kernel names in column order, comma-separated</td></tr>
 *   <tr><td>{@code ntk.checksum}</td><td>{@code crc32c:} and 8 lowercase hex digits: the CRC-32C
 *       of the columns' value bytes as stored (little-endian, {@code rows * cols} values per
 *       column, columns in order); a reader rejects a tile whose values do not match it</td></tr>
 * </table>
 *
 * <p>Python reads a tile with {@code pyarrow.ipc.open_file(path).read_all()}; {@code
 * table.column('ntk').to_numpy().reshape(rows, cols)} gives the block.
 *
 * <p>Both formats are written atomically: to a hidden {@code .ntk-tmp-<name>.<random>.tmp} file
 * in the target's directory ({@link dev.ntk.io.AtomicFiles}), then renamed over the target, so
 * readers never see partial files. Arrow needs {@code
 * --add-opens=java.base/java.nio=ALL-UNNAMED} on Java 17.
 */
package dev.ntk.io;

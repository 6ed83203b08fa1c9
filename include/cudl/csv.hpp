#pragma once
// CSV files as a cudl::Dataset (issue 21): numeric feature columns and one target column (class
// labels, as numbers or as names, or regression values), parsed once into floats in memory.
//
//   cudl::CsvOptions o;
//   o.target = "price";                                  // by name; or o.target = -1 (the last column)
//   auto data = cudl::CsvDataset::read("houses.csv", o);
//   cudl::fit(net, loss, opt, *data, options);
//
// The file is tokenized by libcsv (Debian's libcsv-dev: quoted cells, embedded separators and
// line breaks, LF, CRLF or CR line ends) and every cell is read as a float by std::from_chars
// (the nearest float, whatever the locale). Blank lines are skipped; a UTF-8 byte-order mark is
// dropped; spaces and tabs around a cell are ignored. Every bad input is refused with one
// sentence (a cudl::Error) naming the file and, for a cell, its line and column (both 1-based)
// and the column's header name, e.g.
//   iris.csv: line 7, column 3 ('petal_length'): 'l.4' is not a number
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "cudl/dataset.hpp"

namespace cudl {

/// One column of a CSV file: by its header name, or by its index (0-based; a negative index counts
/// from the end, -1 being the last column). Converts implicitly from both, so that
/// `o.target = "species"` and `o.target = 0` read as they should.
class CsvColumn {
 public:
  CsvColumn() = default;  ///< The last column.
  /// The column at `index` (negative: from the end). Any integer type (not bool or char), so that
  /// neither 0 nor a size_t is ambiguous.
  template <typename I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool> && !std::is_same_v<I, char>, int> = 0>
  CsvColumn(I index) : index_(static_cast<int64_t>(index)) {}              // NOLINT: implicit by design
  /// The column whose header cell is `name` (the file must have a header).
  CsvColumn(std::string name) : name_(std::move(name)), by_name_(true) {}  // NOLINT
  /// The column whose header cell is `name` (the file must have a header).
  CsvColumn(const char* name) : name_(name), by_name_(true) {}             // NOLINT

  /// Whether the column is chosen by header name rather than by index.
  bool by_name() const { return by_name_; }
  const std::string& name() const { return name_; }  ///< The header name; by_name() only.
  int64_t index() const { return index_; }           ///< The index; !by_name() only.

 private:
  std::string name_;
  int64_t index_ = -1;
  bool by_name_ = false;
};

/// How CsvDataset reads a file.
struct CsvOptions {
  /// The target column; every other column not in `ignore` is a feature. Default: the last one.
  CsvColumn target;

  /// Whether the first row names the columns.
  enum class Header {
    /// The first row is a header when one of its cells is text (not a number, not a
    /// missing-value mark) above a cell of the second row that is not text; a one-row
    /// file: when any cell is text.
    kAuto,
    kYes,   ///< The first row names the columns.
    kNo,    ///< Every row is data (columns are named "column 1", "column 2", ... in messages).
  };
  Header header = Header::kAuto;  ///< Whether the first row is a header; by default, guessed.

  /// The cell separator: ';' or a tab for other dialects; not a double quote, a carriage return
  /// or a line feed. Two separators in a row enclose an empty (missing) cell, also when the
  /// separator is a space.
  char separator = ',';

  /// Whether the target column holds class labels or values.
  enum class Targets {
    /// Class labels when the target column holds any text (names: the sorted distinct names are
    /// classes 0, 1, ..., see CsvDataset::class_names()), or when every target is a whole number
    /// written as an integer ("3", not "3.0"), at least 0 and below 1000, and every one of 0 to
    /// the largest occurs (an age or a count leaves gaps); values otherwise. With `classes` > 0,
    /// as kClasses.
    kAuto,
    /// Class labels: names as above if any target is text, else whole numbers in [0, classes).
    kClasses,
    /// One value per row (regression); every target must be a finite number.
    kValues,
  };
  Targets targets = Targets::kAuto;  ///< Class labels or values; by default, guessed.
  /// Classes of class targets; 0: the largest label + 1, or the number of distinct names. A label
  /// at or above it (or more names than it) is an error.
  int64_t classes = 0;

  /// What a missing feature cell becomes. Missing: an empty cell, NA, N/A, null, None or NaN (in
  /// any case, NaN with a sign too). A missing target is refused under every policy; so are inf
  /// and numbers beyond float's range, which are not "missing".
  enum class Missing {
    kRefuse,  ///< An Error naming the first missing cell.
    kZero,    ///< 0.
    kMean,    ///< The mean of the column's other cells (a column with no value at all is an Error).
  };
  Missing missing = Missing::kRefuse;  ///< The policy for missing feature cells.

  /// Columns to leave out (an id, a free-text note). Their cells are not read at all.
  std::vector<CsvColumn> ignore;
};

/// A CSV file's rows as floats, held in host memory.
///
/// Examples of `features` floats each (example_shape() {features}) and one target per row (a
/// class index, or a value: target_shape() {1}). Immutable once read: every member is const and
/// may be called from several threads at once; read() and parse() share no state and may run
/// concurrently too.
class CsvDataset : public Dataset {
 public:
  /// Reads and parses the whole file (see parse); while it parses, memory holds the file's text
  /// and the floats. Throws Error naming the file when it cannot be opened or read, is not a
  /// regular file or is empty, and for everything parse refuses.
  static std::unique_ptr<CsvDataset> read(const std::string& path, const CsvOptions& options = {});

  /// Parses CSV text held in memory; `name` stands for the file in describe() and in errors.
  /// Throws Error (one sentence: name, and line, column and column name for a cell) for: no rows
  /// (or a header alone), a row with another number of cells than the first, malformed quoting,
  /// a feature cell that is not a number, inf or out of float range, a missing cell under kRefuse
  /// (or a column with no value under kMean), a missing or non-numeric target where numbers are
  /// needed, a class label that is not a whole number ≥ 0 or not below `classes`, more class names
  /// than `classes`, an unknown or ambiguous target or ignored column name (or a name when the
  /// file has no header), an index outside the columns, an ignored target, no feature column left,
  /// and a separator that cannot be one.
  static std::unique_ptr<CsvDataset> parse(std::string_view text, const std::string& name,
                                           const CsvOptions& options = {});

  // Dataset. fill() and fill_targets() only copy from memory: const, thread-safe for concurrent
  // calls; an index outside [0, size()) is an Error naming it.
  int64_t size() const override { return rows_; }
  /// {features}.
  Shape example_shape() const override { return {static_cast<int64_t>(feature_names_.size())}; }
  /// {} for class labels, {1} for values.
  Shape target_shape() const override { return classes_ > 0 ? Shape{} : Shape{1}; }
  int64_t num_classes() const override { return classes_; }
  /// Copies rows idx[0..n) from memory; thread-safe for concurrent calls. An index outside
  /// [0, size()) is an Error naming it.
  void fill(const int64_t* idx, int64_t n, float* x, float* y) const override;
  /// Copies the targets of rows idx[0..n) from memory; thread-safe as fill().
  void fill_targets(const int64_t* idx, int64_t n, float* y) const override;
  /// One line, e.g. "houses.csv: 506 rows × 13 features, target 'price' (values)".
  std::string describe() const override;

  /// The features' column names in the order of a row's values (header names, or "column N").
  const std::vector<std::string>& feature_names() const { return feature_names_; }
  /// The target column's name (header name, or "column N").
  const std::string& target_name() const { return target_name_; }
  /// Class k's name when the labels were names (sorted, k = 0, 1, ...); empty when they were numbers.
  const std::vector<std::string>& class_names() const { return class_names_; }
  /// Whether the first row was read as a header.
  bool has_header() const { return header_; }
  /// Missing feature cells that the policy replaced (0 under kRefuse).
  int64_t missing_filled() const { return missing_filled_; }

 private:
  class Parser;  // src/data/csv.cpp
  CsvDataset() = default;
  std::string name_, target_name_;
  std::vector<std::string> feature_names_, class_names_;
  std::vector<float> x_, y_;  // rows × features, rows
  int64_t rows_ = 0, classes_ = 0, missing_filled_ = 0;
  bool header_ = false;
  CsvOptions::Missing missing_ = CsvOptions::Missing::kRefuse;
};

}  // namespace cudl

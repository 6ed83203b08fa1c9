// CSV files (include/cudl/csv.hpp). libcsv tokenizes; it is fed one physical line at a time, so
// that every cell it hands back knows its line. The Parser turns each cell into a float as it
// comes (csv_cell.hpp) and keeps no copy of the text except the first two rows (the header is
// decided from them) and the target cells (numbers or names: known only at the end).
#include "cudl/csv.hpp"

#include <csv.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "cudl/error.hpp"
#include "data/csv_cell.hpp"
#include "data/read_file.hpp"

namespace cudl {

using detail::CellKind;

namespace {

constexpr int64_t kAutoClassLimit = 1000;     // kAuto: integer labels below this are classes
constexpr int32_t kTarget = -1, kIgnored = -2;  // a column's role; features are 0, 1, ...

std::string str(int64_t v) { return std::to_string(v); }

// libcsv's parser, freed on every path.
struct Tokenizer {
  csv_parser p{};
  bool ready = false;
  ~Tokenizer() {
    if (ready) csv_free(&p);
  }
};

}  // namespace

class CsvDataset::Parser {
 public:
  Parser(const std::string& name, const CsvOptions& o) : name_(name), o_(o) {}

  std::unique_ptr<CsvDataset> run(std::string_view text) {
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 byte-order mark
    tokenize(text);
    if (!laid_out_) {
      if (head_.empty()) throw Error(name_ + ": holds no rows (the file is blank)");
      lay_out();
    }
    if (rows_ == 0) throw Error(name_ + ": holds a header row and no rows of data");
    auto d = std::unique_ptr<CsvDataset>(new CsvDataset());
    d->name_ = name_;
    d->header_ = header_;
    d->rows_ = rows_;
    d->missing_ = o_.missing;
    d->target_name_ = column_name(target_);
    for (size_t c = 0; c < role_.size(); ++c)
      if (role_[c] >= 0) d->feature_names_.push_back(column_name(static_cast<int64_t>(c)));
    fill_missing(*d);
    read_targets(*d);
    d->x_ = std::move(x_);
    return d;
  }

 private:
  // ---- tokenizing ----
  void tokenize(std::string_view text) {
    Tokenizer t;
    if (csv_init(&t.p, CSV_STRICT | CSV_STRICT_FINI) != 0) throw Error(name_ + ": libcsv could not start (out of memory)");
    t.ready = true;
    csv_set_delim(&t.p, static_cast<unsigned char>(o_.separator));
    // Lines end at '\n' (LF and CRLF files), or at '\r' in a file with no '\n' at all (old Mac).
    const char eol = text.find('\n') == std::string_view::npos && text.find('\r') != std::string_view::npos ? '\r' : '\n';
    int64_t quote_line = 1;  // the last line that began outside a quoted cell
    for (size_t at = 0; at < text.size();) {
      const size_t brk = text.find(eol, at);
      const size_t end = brk == std::string_view::npos ? text.size() : brk + 1;
      ++line_;
      if (t.p.quoted == 0) quote_line = line_;
      const size_t used = csv_parse(&t.p, text.data() + at, end - at, on_cell, on_row, this);
      if (error_) std::rethrow_exception(error_);
      if (used != end - at) {
        const int e = csv_error(&t.p);
        throw Error(at_cell(line_, col_) + (e == CSV_EPARSE ? ": malformed quoting (a '\"' inside an unquoted cell, or text after a closing '\"')"
                                                            : std::string(": libcsv: ") + csv_strerror(e)));
      }
      at = end;
    }
    const bool open_quote = t.p.quoted != 0;
    const int fini = csv_fini(&t.p, on_cell, on_row, this);
    if (error_) std::rethrow_exception(error_);
    if (fini != 0)
      throw Error(open_quote ? name_ + ": the '\"' that opens a cell on line " + str(quote_line) + " is never closed"
                             : name_ + ": libcsv: " + csv_strerror(csv_error(&t.p)));
  }

  // libcsv's callbacks: they must not throw through its C frames, so the first exception is kept
  // for tokenize() and every later call does nothing.
  static void on_cell(void* s, size_t n, void* self) {
    auto* p = static_cast<Parser*>(self);
    if (p->error_) return;
    try {
      p->cell(std::string_view(s != nullptr ? static_cast<const char*>(s) : "", n));
    } catch (...) {
      p->error_ = std::current_exception();
    }
  }
  static void on_row(int, void* self) {
    auto* p = static_cast<Parser*>(self);
    if (p->error_) return;
    try {
      p->row_end();
    } catch (...) {
      p->error_ = std::current_exception();
    }
  }

  void cell(std::string_view s) {
    if (col_ == 0) row_line_ = line_;
    if (!laid_out_) {
      if (col_ == 0) {
        head_.emplace_back();
        head_line_.push_back(line_);
      }
      head_.back().emplace_back(s);
    } else {
      if (col_ == 0) begin_row();
      if (col_ < ncols_) take(s, col_, line_);
    }
    ++col_;
  }

  void row_end() {
    if (col_ == 0) return;
    const int64_t cells = col_;
    col_ = 0;
    if (!laid_out_) {
      if (head_.size() == 2) lay_out();
      return;
    }
    end_row(cells, row_line_);
  }

  // ---- rows ----
  void begin_row() { x_.resize(x_.size() + static_cast<size_t>(features_)); }

  void end_row(int64_t cells, int64_t line) {
    if (cells != ncols_)
      throw Error(name_ + ": line " + str(line) + " has " + str(cells) + (cells == 1 ? " cell" : " cells") + ", expected " +
                  str(ncols_) + " (as line " + str(head_line_[0]) + " has)");
    ++rows_;
  }

  // Cell `c` of the current row, on `line`.
  void take(std::string_view s, int64_t c, int64_t line) {
    const int32_t role = role_[static_cast<size_t>(c)];
    if (role == kIgnored) return;
    s = detail::trim_cell(s);
    if (role == kTarget) {
      target_text_.append(s);
      target_end_.push_back(target_text_.size());
      target_line_.push_back(line);
      return;
    }
    float& out = x_[x_.size() - static_cast<size_t>(features_) + static_cast<size_t>(role)];
    switch (detail::read_cell(s, out)) {
      case CellKind::kNumber: return;
      case CellKind::kMissing:
        if (o_.missing == CsvOptions::Missing::kRefuse)
          throw Error(at_cell(line, c) + ": missing value ('" + detail::shown_cell(s) +
                      "'), refused unless CsvOptions::missing is kZero or kMean");
        out = o_.missing == CsvOptions::Missing::kZero ? 0.0f : std::nanf("");
        ++missing_[static_cast<size_t>(role)];
        return;
      case CellKind::kText:
        throw Error(at_cell(line, c) + ": '" + detail::shown_cell(s) + "' is not a number" +
                    (line == head_line_[0] ? " (if the first row names the columns, set CsvOptions::header to kYes)" : ""));
      case CellKind::kInfinite: throw Error(at_cell(line, c) + ": '" + detail::shown_cell(s) + "' is not a finite number");
      case CellKind::kOutOfRange: throw Error(at_cell(line, c) + ": '" + detail::shown_cell(s) + "' is beyond float's range");
    }
  }

  // ---- the columns, from the first two rows ----
  bool detect_header() const {
    if (o_.header != CsvOptions::Header::kAuto) return o_.header == CsvOptions::Header::kYes;
    const auto text = [](const std::string& s) {
      float v = 0.0f;
      return detail::read_cell(detail::trim_cell(s), v) == CellKind::kText;
    };
    const std::vector<std::string>& first = head_[0];
    for (size_t c = 0; c < first.size(); ++c)
      if (text(first[c]) && (head_.size() == 1 || (c < head_[1].size() && !text(head_[1][c])))) return true;
    return false;
  }

  // `c`'s header name, or "column c+1".
  std::string column_name(int64_t c) const {
    const std::string name = header_ ? std::string(detail::trim_cell(head_[0][static_cast<size_t>(c)])) : std::string();
    return name.empty() ? "column " + str(c + 1) : name;
  }

  // "FILE: line L, column C ('name')".
  std::string at_cell(int64_t line, int64_t c) const {
    std::string s = name_ + ": line " + str(line) + ", column " + str(c + 1);
    if (header_ && c < ncols_) {
      const std::string_view name = detail::trim_cell(head_[0][static_cast<size_t>(c)]);
      if (!name.empty()) s += " ('" + detail::shown_cell(name) + "')";
    }
    return s;
  }

  int64_t resolve(const CsvColumn& col, const char* what) const {
    if (!col.by_name()) {
      const int64_t i = col.index() < 0 ? ncols_ + col.index() : col.index();
      if (i < 0 || i >= ncols_)
        throw Error(name_ + ": the " + what + " index " + str(col.index()) + " is outside its " + str(ncols_) +
                    " columns (0 to " + str(ncols_ - 1) + ", or -" + str(ncols_) + " to -1)");
      return i;
    }
    if (!header_)
      throw Error(name_ + ": the " + what + " '" + col.name() +
                  "' is named, but the file has no header row (set CsvOptions::header to kYes if its first row names the columns)");
    std::vector<int64_t> found;
    for (int64_t c = 0; c < ncols_; ++c)
      if (detail::trim_cell(head_[0][static_cast<size_t>(c)]) == col.name()) found.push_back(c);
    if (found.size() == 1) return found[0];
    if (found.size() > 1)
      throw Error(name_ + ": the " + what + " '" + col.name() + "' is ambiguous: columns " + str(found[0] + 1) + " and " +
                  str(found[1] + 1) + " have that name (give its index instead)");
    std::string names;
    for (int64_t c = 0; c < ncols_ && c < 12; ++c)
      names += (c > 0 ? ", '" : "'") + detail::shown_cell(detail::trim_cell(head_[0][static_cast<size_t>(c)])) + "'";
    throw Error(name_ + ": no column is named '" + col.name() + "' for the " + what + " (the header has " + names +
                (ncols_ > 12 ? ", ...)" : ")"));
  }

  void lay_out() {
    laid_out_ = true;
    ncols_ = static_cast<int64_t>(head_[0].size());
    header_ = detect_header();
    role_.assign(static_cast<size_t>(ncols_), 0);
    target_ = resolve(o_.target, "target");
    role_[static_cast<size_t>(target_)] = kTarget;
    for (const CsvColumn& col : o_.ignore) {
      const int64_t c = resolve(col, "ignored column");
      if (c == target_)
        throw Error(name_ + ": column " + str(c + 1) + " is the target, so CsvOptions::ignore cannot leave it out");
      role_[static_cast<size_t>(c)] = kIgnored;
    }
    for (int32_t& r : role_)
      if (r == 0) r = static_cast<int32_t>(features_++);
    if (features_ == 0)
      throw Error(name_ + ": no feature column is left of its " + str(ncols_) + " (one is the target, the others ignored)");
    missing_.assign(static_cast<size_t>(features_), 0);
    // The rows read so far, as the tokenizer would have given them.
    for (size_t r = header_ ? 1 : 0; r < head_.size(); ++r) {
      begin_row();
      const auto& row = head_[r];
      for (size_t c = 0; c < row.size() && static_cast<int64_t>(c) < ncols_; ++c)
        take(row[c], static_cast<int64_t>(c), head_line_[r]);
      end_row(static_cast<int64_t>(row.size()), head_line_[r]);
    }
  }

  // ---- after the last row ----
  void fill_missing(CsvDataset& d) {
    for (const int64_t m : missing_) d.missing_filled_ += m;
    if (o_.missing != CsvOptions::Missing::kMean || d.missing_filled_ == 0) return;
    const auto f = static_cast<size_t>(features_);
    std::vector<double> sum(f, 0.0);
    for (size_t i = 0; i < x_.size(); ++i)
      if (!std::isnan(x_[i])) sum[i % f] += x_[i];
    std::vector<float> mean(f);
    for (size_t k = 0, c = 0; k < f; ++k, ++c) {
      while (role_[c] != static_cast<int32_t>(k)) ++c;
      const int64_t present = rows_ - missing_[k];
      if (present == 0 && missing_[k] > 0)
        throw Error(name_ + ": column " + str(static_cast<int64_t>(c) + 1) + " ('" + detail::shown_cell(column_name(static_cast<int64_t>(c))) +
                    "') has no value to take the mean of (every cell is missing)");
      mean[k] = present > 0 ? static_cast<float>(sum[k] / static_cast<double>(present)) : 0.0f;
    }
    for (size_t i = 0; i < x_.size(); ++i)
      if (std::isnan(x_[i])) x_[i] = mean[i % f];
  }

  std::string_view target_text(size_t r) const {
    const size_t begin = r == 0 ? 0 : target_end_[r - 1];
    return std::string_view(target_text_).substr(begin, target_end_[r] - begin);
  }

  void read_targets(CsvDataset& d) {
    const auto n = static_cast<size_t>(rows_);
    d.y_.resize(n);
    bool any_text = false, integers = true;
    float largest = 0.0f;
    for (size_t r = 0; r < n; ++r) {
      const std::string_view s = target_text(r);
      float& v = d.y_[r];
      const CellKind k = detail::read_cell(s, v);
      if (k == CellKind::kMissing)
        throw Error(at_cell(target_line_[r], target_) + ": the target is missing ('" + detail::shown_cell(s) +
                    "'), and a row without one cannot be trained on");
      any_text = any_text || k == CellKind::kText;
      integers = integers && k == CellKind::kNumber && detail::integer_text(s);
      if (k == CellKind::kNumber) largest = std::max(largest, v);
    }
    const auto t = o_.targets;
    if (t != CsvOptions::Targets::kValues && any_text) return read_names(d);
    const bool classes = t == CsvOptions::Targets::kClasses ||
                         (t == CsvOptions::Targets::kAuto && (o_.classes > 0 || (integers && every_class(d.y_, largest))));
    for (size_t r = 0; r < n; ++r) {
      const float v = d.y_[r];
      const std::string_view s = target_text(r);
      float unused = 0.0f;
      const CellKind k = detail::read_cell(s, unused);
      if (k != CellKind::kNumber)
        throw Error(at_cell(target_line_[r], target_) + ": '" + detail::shown_cell(s) + "' is not " +
                    (k == CellKind::kText ? "a number (CsvOptions::targets is kValues)"
                                          : k == CellKind::kInfinite ? "a finite number" : "within float's range"));
      if (!classes) continue;
      if (!(v >= 0.0f && v == std::floor(v) && v < 16777216.0f))
        throw Error(at_cell(target_line_[r], target_) + ": the label '" + detail::shown_cell(s) +
                    "' is not a class index (a whole number ≥ 0)");
      if (o_.classes > 0 && v >= static_cast<float>(o_.classes))
        throw Error(at_cell(target_line_[r], target_) + ": the label " + str(static_cast<int64_t>(v)) +
                    " is not below CsvOptions::classes = " + str(o_.classes));
    }
    if (classes) d.classes_ = o_.classes > 0 ? o_.classes : static_cast<int64_t>(largest) + 1;
  }

  // kAuto's test of integer labels: below kAutoClassLimit, and every one of 0..largest occurs (an
  // integer regression target, an age or a price, leaves gaps).
  static bool every_class(const std::vector<float>& y, float largest) {
    if (largest >= static_cast<float>(kAutoClassLimit)) return false;
    std::vector<bool> seen(static_cast<size_t>(largest) + 1, false);
    for (const float v : y) seen[static_cast<size_t>(v)] = true;
    return std::find(seen.begin(), seen.end(), false) == seen.end();
  }

  // Class names: the sorted distinct texts; each row's label is its name's position.
  void read_names(CsvDataset& d) {
    const auto n = static_cast<size_t>(rows_);
    std::vector<std::string_view> names(n);
    for (size_t r = 0; r < n; ++r) names[r] = target_text(r);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    const auto count = static_cast<int64_t>(names.size());
    if (o_.classes > 0 && count > o_.classes)
      throw Error(name_ + ": column " + str(target_ + 1) + " ('" + detail::shown_cell(column_name(target_)) + "') holds " + str(count) +
                  " distinct class names, more than CsvOptions::classes = " + str(o_.classes));
    for (size_t r = 0; r < n; ++r)
      d.y_[r] = static_cast<float>(std::lower_bound(names.begin(), names.end(), target_text(r)) - names.begin());
    d.classes_ = std::max(count, o_.classes);
    d.class_names_.assign(names.begin(), names.end());
  }

  const std::string& name_;
  const CsvOptions& o_;
  std::exception_ptr error_;
  int64_t line_ = 0, row_line_ = 0, col_ = 0;
  // The first two rows (cells as given) and their lines, until the columns are laid out.
  std::vector<std::vector<std::string>> head_;
  std::vector<int64_t> head_line_;
  bool laid_out_ = false, header_ = false;
  int64_t ncols_ = 0, features_ = 0, target_ = 0, rows_ = 0;
  std::vector<int32_t> role_;     // per column: feature index, kTarget or kIgnored
  std::vector<int64_t> missing_;  // per feature: cells the policy filled
  std::vector<float> x_;
  std::string target_text_;        // every row's target cell, one after another
  std::vector<size_t> target_end_;  // where row r's ends in target_text_
  std::vector<int64_t> target_line_;
};

std::unique_ptr<CsvDataset> CsvDataset::parse(std::string_view text, const std::string& name, const CsvOptions& options) {
  const char sep = options.separator;
  if (sep == '"' || sep == '\r' || sep == '\n')
    throw Error(name + ": CsvOptions::separator cannot be '\"', '\\r' or '\\n'");
  if (options.classes < 0) throw Error(name + ": CsvOptions::classes must be 0 (from the labels) or positive");
  return Parser(name, options).run(text);
}

std::unique_ptr<CsvDataset> CsvDataset::read(const std::string& path, const CsvOptions& options) {
  std::string text;
  detail::read_file(path, -1, text, "no CSV rows");
  return parse(text, path, options);
}

void CsvDataset::fill(const int64_t* idx, int64_t n, float* x, float* y) const {
  fill_targets(idx, n, y);  // checks the indices
  const auto f = feature_names_.size();
  for (int64_t i = 0; i < n; ++i)
    std::copy_n(x_.data() + static_cast<size_t>(idx[i]) * f, f, x + static_cast<size_t>(i) * f);
}

void CsvDataset::fill_targets(const int64_t* idx, int64_t n, float* y) const {
  check_indices(idx, n, "CsvDataset::fill");
  for (int64_t i = 0; i < n; ++i) y[i] = y_[static_cast<size_t>(idx[i])];
}

std::string CsvDataset::describe() const {
  const auto count = [](size_t n, const char* what) { return std::to_string(n) + " " + what + (n == 1 ? "" : "s"); };
  std::string s = name_ + ": " + count(static_cast<size_t>(rows_), "row") + " × " + count(feature_names_.size(), "feature") +
                  ", target '" + target_name_ + "' (";
  if (classes_ == 0) {
    s += "values)";
  } else {
    s += std::to_string(classes_) + (classes_ == 1 ? " class" : " classes");
    for (size_t k = 0; k < class_names_.size() && k < 4; ++k) s += (k == 0 ? ": " : ", ") + class_names_[k];
    s += class_names_.size() > 4 ? ", ...)" : ")";
  }
  if (missing_filled_ > 0)
    s += ", " + std::to_string(missing_filled_) + " missing cells filled with " +
         (missing_ == CsvOptions::Missing::kZero ? "0" : "the column means");
  return s;
}

}  // namespace cudl

// Table: aligned text columns for cairnctl's human output.
//
//   Table table({"ID", "HOSTNAME", "STATE"});
//   table.AddRow({"a1", "host-1", "active"});
//   std::cout << table.Render();
//
// Columns are left-aligned and separated by two spaces; the last column is
// not padded (no trailing blanks). Widths count UTF-8 code points. Control
// characters in a cell (newline, tab, ...) are shown as spaces so that one
// row stays one line. A row with fewer cells than the header is padded
// with empty cells; extra cells are kept (the column gets no header).
//
// Thread safety: a plain value.

#ifndef CAIRN_CLI_TABLE_H_
#define CAIRN_CLI_TABLE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace cairn::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header);

  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }

  // The header and every row, each ending in '\n'.
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;  // rows_[0] is the header
};

// Code points in `text` (bytes that do not continue a UTF-8 sequence).
size_t DisplayWidth(absl::string_view text);

// `text` shortened to at most `max` code points, ending in "..." when cut.
std::string Truncate(absl::string_view text, size_t max);

}  // namespace cairn::cli

#endif  // CAIRN_CLI_TABLE_H_
